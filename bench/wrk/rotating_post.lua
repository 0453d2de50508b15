-- wrk script: POST {"qty":1} to BENCH_PATH with a bearer token rotated from BENCH_TOKENS,
-- one token per request, each thread starting at its own offset.
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local path = os.getenv("BENCH_PATH")
local counter = 0

function setup(thread)
  thread:set("offset", math.random(#tokens))
end

function init(args)
  counter = offset or 0
end

wrk.method = "POST"
wrk.body = '{"qty":1}'
wrk.headers["Content-Type"] = "application/json"

request = function()
  counter = counter + 1
  wrk.headers["Authorization"] = "Bearer " .. tokens[(counter % #tokens) + 1]
  return wrk.format(nil, path)
end

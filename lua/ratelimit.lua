-- ratelimit.lua: count one attempt against several fixed-window counters, all or none.
--
-- KEYS[1..n] counters (one per subject: a user, a client IP, a sale, ...). In Redis Cluster
--            they must share one hash tag, as every multi-key script's keys do.
--
-- ARGV[1]     window, milliseconds (>= 1); a counter's window starts at its first attempt
-- ARGV[1 + i] attempts KEYS[i] allows per window
--
-- Every counter is checked before any is counted, so an attempt refused by one counter does
-- not use up the others (a user past their own limit does not eat their IP's or the sale's).
--
-- Returns {0, 0} when counted, or {i, ms} when KEYS[i] is at its limit: ms until its window
-- ends (the first such counter).
local window = tonumber(ARGV[1])
local counts = redis.call('MGET', unpack(KEYS))
for i = 1, #KEYS do
  if tonumber(counts[i] or '0') >= tonumber(ARGV[1 + i]) then
    local wait = redis.call('PTTL', KEYS[i])
    if wait < 1 then
      wait = window
    end
    return {i, wait}
  end
end
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then
    redis.call('PEXPIRE', KEYS[i], window)
  end
end
return {0, 0}

-- reserve.lua: reserve the stock of every line of a checkout order, all or nothing, and queue
-- the order, in one atomic step.
--
-- KEYS[1]     idempotency record of this user and key (untouched when ARGV[1] is "")
-- KEYS[2]     queued-order view (the order JSON, readable until the writer has persisted it)
-- KEYS[3]     checkout outbox stream (field "o" = the order JSON)
-- KEYS[4..]   sellable stock of each line's SKU, one key per line, in line order
-- On Redis Cluster these keys live in several slots; there the caller reserves per slot and
-- compensates (see checkout/reservation.py). On one Redis node this script is the whole step.
--
-- ARGV[1] request fingerprint when an Idempotency-Key was sent, else ""
-- ARGV[2] order id proposed for this checkout
-- ARGV[3] the order JSON (built and priced by the caller)
-- ARGV[4] time to live of the idempotency record and the order view, seconds
-- ARGV[5..] per line, two values: quantity, then the units to start from if the SKU's stock
--           key does not exist yet (what PostgreSQL says is available)
--
-- Returns:
--   {0, order id}                      accepted
--   {1, order id of the first request} replay of an accepted request
--   {2, line number (1-based), units}  that line is short: only `units` are left; nothing held
--   {7, ""}                            idempotency key reused with another request body
if ARGV[1] ~= '' then
  local seen = redis.call('GET', KEYS[1])
  if seen then
    local sep = string.find(seen, '|', 1, true)
    if string.sub(seen, sep + 1) ~= ARGV[1] then
      return {7, ''}
    end
    return {1, string.sub(seen, 1, sep - 1)}
  end
end

local lines = #KEYS - 3
for i = 1, lines do
  local key = KEYS[3 + i]
  local qty = tonumber(ARGV[3 + 2 * i])
  local left = redis.call('GET', key)
  if not left then
    left = ARGV[4 + 2 * i]
    redis.call('SET', key, left)
  end
  if tonumber(left) < qty then
    return {2, i, tonumber(left)}
  end
end
for i = 1, lines do
  redis.call('DECRBY', KEYS[3 + i], tonumber(ARGV[3 + 2 * i]))
end

local ttl = tonumber(ARGV[4])
if ARGV[1] ~= '' then
  redis.call('SET', KEYS[1], ARGV[2] .. '|' .. ARGV[1], 'EX', ttl)
end
redis.call('SET', KEYS[2], ARGV[3], 'EX', ttl)
redis.call('XADD', KEYS[3], '*', 'o', ARGV[3])
return {0, ARGV[2]}

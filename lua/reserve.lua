-- reserve.lua: reserve the stock of every line of a checkout order, the coupons it uses and the
-- points it spends, all or nothing, and queue the order, in one atomic step.
--
-- KEYS[1]     idempotency record of this user and key (untouched when ARGV[1] is "")
-- KEYS[2]     queued-order view (the order JSON, readable until the writer has persisted it)
-- KEYS[3]     checkout outbox stream (field "o" = the order JSON)
-- then        sellable stock of each line's SKU, one key per line, in line order (ARGV[5] keys)
-- then        use counter of each coupon the order uses (ARGV[6] keys): how many uses of that
--             coupon were ever reserved
-- then        the user's points-reserved counter, only when ARGV[7] > 0: points ever reserved
--             for orders at checkout
-- On Redis Cluster these keys live in several slots; there the caller reserves per slot and
-- compensates. On one Redis node this script is the whole step.
--
-- ARGV[1] request fingerprint when an Idempotency-Key was sent, else ""
-- ARGV[2] order id proposed for this checkout
-- ARGV[3] the order JSON (built and priced by the caller)
-- ARGV[4] time to live of the idempotency record and the order view, seconds
-- ARGV[5] number of lines n
-- ARGV[6] number of coupons m
-- ARGV[7] points to spend (0 for none)
-- ARGV[8] the user's points balance in PostgreSQL (members.points)
-- ARGV[9] points the user ever redeemed according to PostgreSQL (members.redeemed), read in the
--         same snapshot as ARGV[8]; what the counter holds beyond it is still in flight
-- ARGV[10..] per line: its quantity
-- then    per coupon: how many times a use of it was given back (user_coupons.returned_count);
--         a use is free when the counter is at most that
--
-- Returns:
--   {0, order id}                      accepted
--   {1, order id of the first request} replay of an accepted request
--   {2, line number (1-based), units}  that line is short: only `units` are left; nothing held
--   {3, points available}              not enough points; nothing held
--   {4, coupon number (1-based)}       that coupon is already used by another order
--   {5, line number (1-based)}         that line's SKU has no stock key yet: nothing held; the
--                                      caller creates it (lua/stock_init.lua) and calls again
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

local lines = tonumber(ARGV[5])
local coupons = tonumber(ARGV[6])
local points = tonumber(ARGV[7])
local line_arg = 10
local coupon_key = 3 + lines
local coupon_arg = line_arg + lines

for i = 1, lines do
  if redis.call('EXISTS', KEYS[3 + i]) == 0 then
    return {5, i}
  end
end
for i = 1, lines do
  local left = tonumber(redis.call('GET', KEYS[3 + i]))
  if left < tonumber(ARGV[line_arg + i - 1]) then
    return {2, i, left}
  end
end
for i = 1, coupons do
  local uses = tonumber(redis.call('GET', KEYS[coupon_key + i]) or '0')
  if uses > tonumber(ARGV[coupon_arg + i - 1]) then
    return {4, i}
  end
end
local points_key = KEYS[coupon_key + coupons + 1]
if points > 0 then
  local redeemed = tonumber(ARGV[9])
  local reserved = tonumber(redis.call('GET', points_key) or '0')
  if reserved < redeemed then
    reserved = redeemed
  end
  local available = tonumber(ARGV[8]) - (reserved - redeemed)
  if available < points then
    return {3, math.max(available, 0)}
  end
  redis.call('SET', points_key, reserved + points)
end

for i = 1, lines do
  redis.call('DECRBY', KEYS[3 + i], tonumber(ARGV[line_arg + i - 1]))
end
for i = 1, coupons do
  redis.call('SET', KEYS[coupon_key + i], tonumber(ARGV[coupon_arg + i - 1]) + 1)
end

local ttl = tonumber(ARGV[4])
if ARGV[1] ~= '' then
  redis.call('SET', KEYS[1], ARGV[2] .. '|' .. ARGV[1], 'EX', ttl)
end
redis.call('SET', KEYS[2], ARGV[3], 'EX', ttl)
redis.call('XADD', KEYS[3], '*', 'o', ARGV[3])
return {0, ARGV[2]}

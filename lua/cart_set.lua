-- cart_set.lua: set or add to one line of a user's cart, atomically.
--
-- KEYS[1] the user's cart hash (SKU id -> quantity)
--
-- ARGV[1] SKU id
-- ARGV[2] quantity
-- ARGV[3] mode: "set" replaces the line's quantity, "add" adds to it
-- ARGV[4] most units allowed on the line (the lower of the per-line cap and what is available)
-- ARGV[5] most lines allowed in the cart
-- ARGV[6] time to live of the cart, seconds
--
-- Returns {code, quantity on the line afterwards}:
--   0 done
--   1 the line would exceed ARGV[4] (nothing changed; quantity is the line's current one)
--   2 the cart already has ARGV[5] lines (nothing changed)
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local qty = tonumber(ARGV[2])
if ARGV[3] == 'add' then
  qty = current + qty
end
if qty > tonumber(ARGV[4]) then
  return {1, current}
end
if current == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then
  return {2, current}
end
redis.call('HSET', KEYS[1], ARGV[1], qty)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6]))
return {0, qty}

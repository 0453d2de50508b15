-- release_skus.lua: give a cancelled or refunded checkout order's units back to its SKUs, once.
--
-- KEYS[1]   released marker of this order (exists once its units are back)
-- KEYS[2..] sellable stock of each SKU of the order
-- On Redis Cluster the keys live in several slots; there the caller applies them per slot.
--
-- ARGV[1]   time to live of the marker, seconds
-- ARGV[2..] units to give back, one per stock key, in the same order
--
-- A stock key that does not exist refuses the whole call, marker included: the caller creates
-- the key (lua/stock_init.lua, which leaves out the returns not yet applied) and calls again.
-- Returns 1 when the units went back now, 0 when they already had, -n when the stock key of
-- the n-th SKU does not exist (nothing changed).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    return 1 - i
  end
end
redis.call('SET', KEYS[1], '1', 'EX', tonumber(ARGV[1]))
for i = 2, #KEYS do
  redis.call('INCRBY', KEYS[i], tonumber(ARGV[i]))
end
return 1

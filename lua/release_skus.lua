-- release_skus.lua: give a cancelled or refunded checkout order's units back to its SKUs, once.
--
-- KEYS[1]   released marker of this order (exists once its units are back)
-- KEYS[2..] sellable stock of each SKU of the order
-- On Redis Cluster the keys live in several slots; there the caller applies them per slot.
--
-- ARGV[1]   time to live of the marker, seconds
-- ARGV[2..] units to give back, one per stock key, in the same order
--
-- A stock key that does not exist is left alone: it will be created from PostgreSQL, where
-- the units are already back, at the next checkout of that SKU.
-- Returns 1 when the units went back now, 0 when they already had.
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) == false then
  return 0
end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('INCRBY', KEYS[i], tonumber(ARGV[i]))
  end
end
return 1

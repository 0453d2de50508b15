-- adjust_stock.lua: move a SKU's sellable stock by a staff change of its regular-sale stock.
--
-- KEYS[1] sellable stock of the SKU
-- ARGV[1] change in units (negative to take units away)
--
-- Returns {code, units after (or now, when refused)}:
--   0 done (also when the key does not exist yet: it will be created from PostgreSQL)
--   1 refused: fewer units are free in Redis than would be taken away (the rest are held by
--     orders on their way to PostgreSQL)
local current = redis.call('GET', KEYS[1])
if not current then
  return {0, -1}
end
local delta = tonumber(ARGV[1])
if tonumber(current) + delta < 0 then
  return {1, tonumber(current)}
end
return {0, redis.call('INCRBY', KEYS[1], delta)}

-- adjust_stock.lua: move a SKU's sellable stock by a staff change or a flash sale's take, while
-- the caller holds the SKU's PostgreSQL row lock inside the transaction that makes the change.
--
-- KEYS[1] sellable stock of the SKU
-- ARGV[1] change in units (negative to take units away; positive only to undo a take of this
--         same transaction that answered 0, before it rolls back)
--
-- Returns {code, units after (or now, when refused)}:
--   0 done in Redis
--   1 refused: fewer units are free in Redis than would be taken away (the rest are held by
--     orders on their way to PostgreSQL); nothing changed
--   2 the key does not exist: nothing changed, PostgreSQL alone holds the SKU's stock and
--     lua/stock_init.lua creates the key from it, under the same row lock, after the commit
local current = redis.call('GET', KEYS[1])
if not current then
  return {2, -1}
end
local delta = tonumber(ARGV[1])
if tonumber(current) + delta < 0 then
  return {1, tonumber(current)}
end
return {0, redis.call('INCRBY', KEYS[1], delta)}

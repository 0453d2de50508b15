-- stock_init.lua: create a SKU's sellable stock key from PostgreSQL when it does not exist.
--
-- The caller holds the SKU's PostgreSQL row lock (SELECT ... FOR UPDATE), so no take, give or
-- stock return of the SKU commits meanwhile, and reads in that transaction the units free in
-- PostgreSQL (stock - sold) minus the units of stock returns not yet applied to Redis (they
-- reach the key through lua/release_skus.lua, which refuses to run while the key is missing).
-- No order can be on its way for a SKU without a key: every checkout reserves in Redis first.
--
-- KEYS[1] sellable stock of the SKU
-- KEYS[2] units held for the SKU (lua/stock_give.lua): given in PostgreSQL, not yet in Redis
-- ARGV[1] units free according to PostgreSQL, returns not yet applied left out
--
-- Returns {created (1) or already there (0), units now}.
local current = redis.call('GET', KEYS[1])
if current then
  return {0, tonumber(current)}
end
local units = tonumber(ARGV[1]) - tonumber(redis.call('GET', KEYS[2]) or '0')
if units < 0 then
  units = 0
end
redis.call('SET', KEYS[1], units)
return {1, units}

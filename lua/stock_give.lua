-- stock_give.lua: give units back to a SKU's sellable stock in two steps around the PostgreSQL
-- commit that gives them (a staff stock raise, a flash sale's unsold or returned units).
--
-- KEYS[1] sellable stock of the SKU
-- KEYS[2] units held for the SKU: given in PostgreSQL (or about to be) but not yet in Redis
-- ARGV[1] step:
--   "hold"  inside the transaction, after the SKU row is locked: count the units as held
--   "drop"  inside the transaction, before it rolls back: the units are not given after all
--   "apply" after the commit: move the units from held into the stock; when the stock key does
--           not exist they only leave held, and lua/stock_init.lua counts them from PostgreSQL
-- ARGV[2] units (>= 1)
--
-- lua/stock_init.lua subtracts what is held from PostgreSQL's count, so a key created between
-- the commit and "apply" does not count the units twice. A commit whose outcome is unknown
-- leaves its units held: Redis then offers fewer units than PostgreSQL, never more, until
-- `mall reconcile --repair` (which clears what is held) or the next "apply".
-- "apply" and "drop" take at most what is held, so one repeated or racing a repair never
-- counts units twice.
-- Returns the units held after the call.
local units = tonumber(ARGV[2])
local held = tonumber(redis.call('GET', KEYS[2]) or '0')
if ARGV[1] == 'hold' then
  return redis.call('INCRBY', KEYS[2], units)
end
if units > held then
  units = held
end
if units <= 0 then
  return held
end
if ARGV[1] == 'apply' and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('INCRBY', KEYS[1], units)
end
if held - units == 0 then
  redis.call('DEL', KEYS[2])
  return 0
end
return redis.call('DECRBY', KEYS[2], units)

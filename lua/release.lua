-- release.lua: give a cancelled or refunded order's units back to its flash sale, once.
--
-- KEYS[1] remaining stock of the sale
-- KEYS[2] buyers hash of the sale (user id -> units bought)
-- KEYS[3] released marker of this order (exists once its units are back)
-- All keys share the sale's hash tag.
--
-- ARGV[1] user id   ARGV[2] units   ARGV[3] time to live of the marker, seconds
--
-- Returns {1, remaining} when the units went back now, {0, remaining} when they already had.
if redis.call('SET', KEYS[3], '1', 'NX', 'EX', tonumber(ARGV[3])) == false then
  return {0, tonumber(redis.call('GET', KEYS[1]) or '0')}
end
local units = tonumber(ARGV[2])
local remaining = redis.call('INCRBY', KEYS[1], units)
if redis.call('HINCRBY', KEYS[2], ARGV[1], -units) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return {1, remaining}

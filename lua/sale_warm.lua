-- sale_warm.lua: load a flash sale into Redis from PostgreSQL. Safe to run at any time: it
-- never resets stock that is already there, never recreates the consumer group, and leaves a
-- closed sale untouched.
--
-- KEYS[1] sale meta hash
-- KEYS[2] remaining stock
-- KEYS[3] outbox stream
-- All keys share the sale's hash tag.
--
-- ARGV[1] sale id      ARGV[2] sku id       ARGV[3] price (fen)
-- ARGV[4] starts_at_ms ARGV[5] ends_at_ms   ARGV[6] per_user_limit
-- ARGV[7] stock of the sale
-- ARGV[8] remaining stock to start from when Redis holds none (PostgreSQL's stock - sold)
-- ARGV[9] consumer group of the outbox relay
-- ARGV[10] requires_token: "1" when buyers need an admission token (absent: "0")
-- ARGV[11] number of stock shards of the sale (absent: "1"); ARGV[8] is then this shard's part
--
-- Returns {code, remaining stock}: 0 loaded (or already there), 1 closed (nothing touched).
if redis.call('HGET', KEYS[1], 'closed') then
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
redis.call('HSET', KEYS[1], 'sale_id', ARGV[1], 'sku_id', ARGV[2], 'price', ARGV[3],
           'starts_at_ms', ARGV[4], 'ends_at_ms', ARGV[5], 'per_user_limit', ARGV[6],
           'stock', ARGV[7], 'requires_token', ARGV[10] or '0', 'shards', ARGV[11] or '1')
redis.call('SET', KEYS[2], ARGV[8], 'NX')
local ok, err = pcall(redis.call, 'XGROUP', 'CREATE', KEYS[3], ARGV[9], '0', 'MKSTREAM')
if not ok and not string.find(tostring(err), 'BUSYGROUP', 1, true) then
  return redis.error_reply(tostring(err))
end
return {0, tonumber(redis.call('GET', KEYS[2]))}

-- sale_update.lua: replace a flash sale's terms in Redis before it starts, in one atomic step,
-- so an admission never sees a half-edited sale.
--
-- KEYS[1] sale meta hash
-- KEYS[2] remaining stock
-- KEYS[3] outbox stream
-- All keys share the sale's hash tag.
--
-- ARGV[1] sale id      ARGV[2] sku id       ARGV[3] price (fen)
-- ARGV[4] starts_at_ms ARGV[5] ends_at_ms   ARGV[6] per_user_limit
-- ARGV[7] stock        ARGV[8] consumer group of the outbox relay
-- ARGV[9] starts_at_ms the sale had before this edit, as PostgreSQL records it
-- ARGV[10] requires_token: "1" when buyers need an admission token (absent: "0")
-- ARGV[11] this shard's part of the stock (absent: ARGV[7], the whole stock)
-- ARGV[12] number of stock shards of the sale (absent: "1")
--
-- Returns {code, remaining stock}:
--   0 updated (the stock is replaced: nothing can have been sold before the start)
--   1 refused: the sale has started by the Redis clock (the clock admit.lua reads)
--   2 refused: the sale is closed
local current = redis.call('HMGET', KEYS[1], 'starts_at_ms', 'closed')
local remaining = tonumber(redis.call('GET', KEYS[2]) or '0')
if current[2] then
  return {2, remaining}
end
local start = tonumber(ARGV[9])
if current[1] and tonumber(current[1]) < start then
  start = tonumber(current[1])
end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now_ms >= start then
  return {1, remaining}
end
redis.call('HSET', KEYS[1], 'sale_id', ARGV[1], 'sku_id', ARGV[2], 'price', ARGV[3],
           'starts_at_ms', ARGV[4], 'ends_at_ms', ARGV[5], 'per_user_limit', ARGV[6],
           'stock', ARGV[7], 'requires_token', ARGV[10] or '0', 'shards', ARGV[12] or '1')
redis.call('SET', KEYS[2], ARGV[11] or ARGV[7])
local ok, err = pcall(redis.call, 'XGROUP', 'CREATE', KEYS[3], ARGV[8], '0', 'MKSTREAM')
if not ok and not string.find(tostring(err), 'BUSYGROUP', 1, true) then
  return redis.error_reply(tostring(err))
end
return {0, tonumber(ARGV[11] or ARGV[7])}

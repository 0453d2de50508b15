-- init_sale.lua: make a flash sale sellable in Redis. Safe to run again: it never resets
-- stock that is already there and never recreates the consumer group.
--
-- KEYS[1] sale meta hash
-- KEYS[2] remaining stock
-- KEYS[3] outbox stream
-- All keys share the sale's hash tag.
--
-- ARGV[1] sale id     ARGV[2] sku id      ARGV[3] price (fen)
-- ARGV[4] starts_at_ms ARGV[5] ends_at_ms ARGV[6] per_user_limit
-- ARGV[7] initial remaining stock          ARGV[8] consumer group of the outbox relay
-- ARGV[9] requires_token: "1" when buyers need an admission token (absent: "0")
-- ARGV[10] number of stock shards of the sale (absent: "1")
-- ARGV[11] the sale's whole stock, kept in the meta hash (absent: ARGV[7]); ARGV[7] is then
--          this shard's part of it
--
-- Returns the remaining stock after the call.
redis.call('HSET', KEYS[1], 'sale_id', ARGV[1], 'sku_id', ARGV[2], 'price', ARGV[3],
           'starts_at_ms', ARGV[4], 'ends_at_ms', ARGV[5], 'per_user_limit', ARGV[6],
           'stock', ARGV[11] or ARGV[7], 'requires_token', ARGV[9] or '0',
           'shards', ARGV[10] or '1')
redis.call('SET', KEYS[2], ARGV[7], 'NX')
local ok, err = pcall(redis.call, 'XGROUP', 'CREATE', KEYS[3], ARGV[8], '0', 'MKSTREAM')
if not ok and not string.find(tostring(err), 'BUSYGROUP', 1, true) then
  return redis.error_reply(tostring(err))
end
return tonumber(redis.call('GET', KEYS[2]))

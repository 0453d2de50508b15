-- sale_close.lua: end a flash sale now (or settle one that has ended) and take the units it
-- did not sell out of Redis, to be given back to the SKU. Safe to run again: later runs only
-- take the units that came back since (cancellations and refunds of the sale's orders).
--
-- KEYS[1] sale meta hash
-- KEYS[2] remaining stock
-- Both keys share the sale's hash tag.
--
-- The meta hash keeps `closed`, `closed_at_ms` and `to_sku`: the units taken out of the sale
-- so far, a counter that only grows, so PostgreSQL can follow it by its difference.
-- The stock key is deleted rather than set to 0, so every process's sold-out flag clears and
-- admission answers `ended` (admit.lua checks the window before the stock).
--
-- Returns {code, to_sku, ends_at_ms}:
--   0 closed now   1 was closed already   2 no such sale in Redis
local meta = redis.call('HMGET', KEYS[1], 'starts_at_ms', 'ends_at_ms', 'closed', 'to_sku')
if not meta[1] then
  return {2, 0, 0}
end
local code = 1
local ends_at = tonumber(meta[2])
if not meta[3] then
  code = 0
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if now_ms < ends_at then
    ends_at = now_ms
    redis.call('HSET', KEYS[1], 'ends_at_ms', now_ms)
  end
  if now_ms < tonumber(meta[1]) then
    redis.call('HSET', KEYS[1], 'starts_at_ms', now_ms)
  end
  redis.call('HSET', KEYS[1], 'closed', '1', 'closed_at_ms', now_ms)
end
local to_sku = tonumber(meta[4] or '0')
local left = tonumber(redis.call('GET', KEYS[2]) or '0')
if left > 0 then
  to_sku = redis.call('HINCRBY', KEYS[1], 'to_sku', left)
end
redis.call('DEL', KEYS[2])
return {code, to_sku, ends_at}

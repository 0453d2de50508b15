-- admit.lua: admit one flash-sale purchase in a single atomic step.
--
-- KEYS[1] sale meta hash    (sale_id, sku_id, price, starts_at_ms, ends_at_ms, per_user_limit)
-- KEYS[2] remaining stock   (integer string)
-- KEYS[3] buyers hash       (user id -> units bought)
-- KEYS[4] idempotency record of this user and key (untouched when ARGV[4] is "")
-- KEYS[5] queued-order view (the order JSON, readable until the writer has persisted it)
-- KEYS[6] outbox stream     (one entry per accepted order, field "o" = the order JSON)
-- All six keys share the sale's hash tag, so the script runs on Redis Cluster.
--
-- ARGV[1] user id ([A-Za-z0-9_-], checked by the caller, so it needs no JSON escaping)
-- ARGV[2] quantity (integer >= 1)
-- ARGV[3] order id proposed for this purchase ([a-z0-9-])
-- ARGV[4] request fingerprint when an Idempotency-Key was sent, else ""
-- ARGV[5] time to live of the idempotency record and the order view, seconds
--
-- Returns {code, order id or "", remaining stock}:
--   0 accepted          (order id = ARGV[3])
--   1 replay            (order id of the first accepted request with this key)
--   2 sold out          (remaining may be > 0 but below the quantity)
--   3 limit reached     (the user would exceed per_user_limit)
--   4 not started
--   5 ended
--   6 no such sale
--   7 idempotency key reused with another request body
local meta = redis.call('HMGET', KEYS[1], 'starts_at_ms', 'ends_at_ms', 'per_user_limit',
                        'sale_id', 'sku_id', 'price')
if not meta[1] then
  return {6, '', 0}
end

local remaining = tonumber(redis.call('GET', KEYS[2]) or '0')

if ARGV[4] ~= '' then
  local seen = redis.call('GET', KEYS[4])
  if seen then
    local sep = string.find(seen, '|', 1, true)
    if string.sub(seen, sep + 1) ~= ARGV[4] then
      return {7, '', remaining}
    end
    return {1, string.sub(seen, 1, sep - 1), remaining}
  end
end

local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now_ms < tonumber(meta[1]) then
  return {4, '', remaining}
end
if now_ms >= tonumber(meta[2]) then
  return {5, '', remaining}
end

local qty = tonumber(ARGV[2])
if remaining < qty then
  return {2, '', remaining}
end

local bought = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if bought + qty > tonumber(meta[3]) then
  return {3, '', remaining}
end

remaining = redis.call('DECRBY', KEYS[2], qty)
redis.call('HINCRBY', KEYS[3], ARGV[1], qty)
local ttl = tonumber(ARGV[5])
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[4], ARGV[3] .. '|' .. ARGV[4], 'EX', ttl)
end
local order = '{"order_id":"' .. ARGV[3] .. '","user_id":"' .. ARGV[1] ..
  '","sale_id":' .. meta[4] .. ',"sku_id":' .. meta[5] .. ',"qty":' .. ARGV[2] ..
  ',"price":' .. meta[6] .. ',"total":' .. string.format('%.0f', tonumber(meta[6]) * qty) ..
  ',"accepted_at_ms":' .. string.format('%.0f', now_ms) .. '}'
redis.call('SET', KEYS[5], order, 'EX', ttl)
redis.call('XADD', KEYS[6], '*', 'o', order)
return {0, ARGV[3], remaining}

-- admit.lua: admit one flash-sale purchase in a single atomic step.
--
-- KEYS[1]  sale meta hash    (sale_id, sku_id, price, starts_at_ms, ends_at_ms, per_user_limit,
--                             requires_token: "1" when buyers need an admission token)
-- KEYS[2]  remaining stock   (integer string)
-- KEYS[3]  buyers hash       (user id -> units bought)
-- KEYS[4]  idempotency record of this user and key (untouched when ARGV[4] is "")
-- KEYS[5]  queued-order view (the order JSON, readable until the writer has persisted it)
-- KEYS[6]  outbox stream     (one entry per accepted order, field "o" = the order JSON)
-- KEYS[7]  rate counter of this user in this sale
-- KEYS[8]  rate counter of this client IP in this sale
-- KEYS[9]  rate counter of the whole sale
-- KEYS[10] used-nonce marker of the admission token (written only when a purchase is accepted
--          with a valid token, so it must be unique to the token's nonce)
-- All ten keys share the sale's hash tag, so the script runs on Redis Cluster. Called with
-- KEYS[1..6] and ARGV[1..5] only (maintenance tools, older callers), nothing is rate-limited
-- and no token is accepted: a sale that requires one refuses.
--
-- ARGV[1]  user id ([A-Za-z0-9_-], checked by the caller, so it needs no JSON escaping)
-- ARGV[2]  quantity (integer >= 1)
-- ARGV[3]  order id proposed for this purchase ([a-z0-9-])
-- ARGV[4]  request fingerprint when an Idempotency-Key was sent, else ""
-- ARGV[5]  time to live of the idempotency record and the order view, seconds
-- ARGV[6]  rate window, milliseconds (>= 1)
-- ARGV[7]  attempts allowed per window for this user   ARGV[8] for this IP
-- ARGV[9]  attempts allowed per window for the whole sale
-- ARGV[10] admission token: "" none sent, "1" valid for this sale and user (its signature and
--          expiry were checked by the caller), "0" sent but not valid
-- ARGV[11] milliseconds until the token expires (>= 1; used when ARGV[10] is "1")
--
-- Order of the checks: no such sale; Idempotency-Key replay (never counted, never limited,
-- needs no fresh token); rate limits (fixed windows: all three counters are checked, then all
-- three counted, so a refused attempt counts nowhere); admission token; sale window; stock;
-- per-user limit. Anything refused leaves stock, buyers, records, outbox and nonce untouched;
-- attempts refused after the rate step stay counted.
--
-- Returns {code, order id or "", remaining stock} (code 8: {8, scope, remaining, retry ms}):
--   0 accepted          (order id = ARGV[3])
--   1 replay            (order id of the first accepted request with this key)
--   2 sold out          (remaining may be > 0 but below the quantity)
--   3 limit reached     (the user would exceed per_user_limit)
--   4 not started
--   5 ended
--   6 no such sale
--   7 idempotency key reused with another request body
--   8 rate limited      (scope "user", "ip" or "sale"; retry ms until that window ends)
--   9 admission token required (the sale requires one and none was sent)
--  10 admission token invalid  (sent but not valid)
--  11 admission token already used
local meta = redis.call('HMGET', KEYS[1], 'starts_at_ms', 'ends_at_ms', 'per_user_limit',
                        'sale_id', 'sku_id', 'price', 'requires_token')
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

if KEYS[9] then
  local counts = redis.call('MGET', KEYS[7], KEYS[8], KEYS[9])
  local scopes = {'user', 'ip', 'sale'}
  for i = 1, 3 do
    if tonumber(counts[i] or '0') >= tonumber(ARGV[6 + i]) then
      local wait = redis.call('PTTL', KEYS[6 + i])
      if wait < 1 then
        wait = tonumber(ARGV[6])
      end
      return {8, scopes[i], remaining, wait}
    end
  end
  local window = tonumber(ARGV[6])
  for i = 7, 9 do
    if redis.call('INCR', KEYS[i]) == 1 then
      redis.call('PEXPIRE', KEYS[i], window)
    end
  end
end

local token_required = meta[7] == '1'
if token_required then
  if not ARGV[10] or ARGV[10] == '' then
    return {9, '', remaining}
  end
  if ARGV[10] ~= '1' then
    return {10, '', remaining}
  end
  if redis.call('EXISTS', KEYS[10]) == 1 then
    return {11, '', remaining}
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
if token_required then
  redis.call('SET', KEYS[10], ARGV[3], 'PX', math.max(tonumber(ARGV[11]), 1))
end
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

-- coupon_claim.lua: hand one coupon of a template to one user, in a single atomic step.
-- Claims by customers and pushes by staff both pass through here, so they share one count.
--
-- KEYS[1] template meta hash (claim_starts_ms, claim_ends_ms, total, per_user, status)
-- KEYS[2] issued counter     (coupons handed out so far, claims and pushes together)
-- KEYS[3] holders hash       (user id -> coupons of this template handed to the user)
-- KEYS[4] idempotency record of this user and key (the seq it was given; untouched when
--         ARGV[2] is "")
-- All four keys share the template's hash tag {cp<id>}, so the script runs on Redis Cluster.
--
-- ARGV[1] user id ([A-Za-z0-9_-], checked by the caller)
-- ARGV[2] "1" when an idempotency key was sent, else ""
-- ARGV[3] time to live of the idempotency record, seconds
-- ARGV[4] "claim" (the claim window applies) or "push" (a staff issue: it does not)
--
-- Returns {code, seq, remaining}:
--   0 issued         (seq = the user's new coupon number of this template, 1..per_user)
--   1 replay         (seq = the number handed to the first request with this key)
--   2 sold out       (total reached)
--   3 limit reached  (the user holds per_user coupons of this template)
--   4 not started    (claim mode only)
--   5 ended          (status ended, or the claim window is over in claim mode)
--   6 no such template in Redis
local meta = redis.call('HMGET', KEYS[1], 'claim_starts_ms', 'claim_ends_ms', 'total',
                        'per_user', 'status')
if not meta[1] then
  return {6, 0, 0}
end
local total = tonumber(meta[3])
local issued = tonumber(redis.call('GET', KEYS[2]) or '0')
local remaining = math.max(total - issued, 0)

if ARGV[2] ~= '' then
  local seen = redis.call('GET', KEYS[4])
  if seen then
    return {1, tonumber(seen), remaining}
  end
end

if meta[5] ~= 'active' then
  return {5, 0, remaining}
end
if ARGV[4] == 'claim' then
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if now_ms < tonumber(meta[1]) then
    return {4, 0, remaining}
  end
  if now_ms >= tonumber(meta[2]) then
    return {5, 0, remaining}
  end
end

if issued >= total then
  return {2, 0, 0}
end
local held = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if held >= tonumber(meta[4]) then
  return {3, 0, remaining}
end

issued = redis.call('INCR', KEYS[2])
local seq = redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[4], seq, 'EX', tonumber(ARGV[3]))
end
return {0, seq, total - issued}

-- coupon_state.lua: load, change, end or rebuild the claim state of one coupon template.
--
-- KEYS[1] template meta hash (claim_starts_ms, claim_ends_ms, total, per_user, status)
-- KEYS[2] issued counter
-- KEYS[3] holders hash (user id -> coupons of this template handed to the user)
-- All three keys share the template's hash tag {cp<id>}.
--
-- ARGV[1] mode:
--   "create"   write the meta; the issued counter starts at 0
--   "patch"    rewrite the meta, refused once any coupon was issued
--   "end"      set status ended (nothing when the meta is missing)
--   "rebuild"  only when the meta is missing: write it, and the counts PostgreSQL holds
-- ARGV[2..6] claim_starts_ms, claim_ends_ms, total, per_user, status  (create, patch, rebuild)
-- ARGV[7]    issued                                                    (rebuild)
-- ARGV[8..]  user id, coupons held, user id, coupons held, ...         (rebuild)
--
-- Returns 0 done; 1 patch refused (coupons were issued); 2 nothing done (end or rebuild found
-- the meta missing or present).
local mode = ARGV[1]

local function write_meta()
  redis.call('HSET', KEYS[1], 'claim_starts_ms', ARGV[2], 'claim_ends_ms', ARGV[3],
             'total', ARGV[4], 'per_user', ARGV[5], 'status', ARGV[6])
end

if mode == 'create' then
  write_meta()
  redis.call('SETNX', KEYS[2], 0)
  return 0
end

if mode == 'patch' then
  if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then
    return 1
  end
  write_meta()
  redis.call('SETNX', KEYS[2], 0)
  return 0
end

if mode == 'end' then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    return 2
  end
  redis.call('HSET', KEYS[1], 'status', 'ended')
  return 0
end

if mode == 'rebuild' then
  if redis.call('EXISTS', KEYS[1]) == 1 then
    return 2
  end
  write_meta()
  redis.call('SET', KEYS[2], ARGV[7])
  redis.call('DEL', KEYS[3])
  for i = 8, #ARGV, 2 do
    redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  end
  return 0
end

return redis.error_reply('unknown mode ' .. tostring(mode))

-- shard_give.lua: first step of moving stock between two shards of one flash sale: take units
-- out of this shard and record them as given, so they are never lost nor counted twice.
-- The sibling adds them with shard_take.lua; the record is then deleted. Until it is, the
-- units are "in transfer": counted by reconciliation, and finished by anyone who finds them.
--
-- KEYS[1] remaining stock of this shard
-- KEYS[2] transfers given by this shard (hash: transfer id -> "<to shard>:<units>")
-- KEYS[3] meta hash of this shard
-- All keys share this shard's hash tag.
--
-- ARGV[1] transfer id (unique)   ARGV[2] shard receiving   ARGV[3] units wanted (>= 1)
-- ARGV[4] units the asker needs at least (<= ARGV[3])
--
-- Gives min(wanted, remaining) units, and nothing when fewer than ARGV[4] are left or the sale
-- is closed. Returns {units given, remaining stock of this shard after}.
if redis.call('HEXISTS', KEYS[3], 'closed') == 1 then
  return {0, 0}
end
local remaining = tonumber(redis.call('GET', KEYS[1]) or '0')
local units = math.min(tonumber(ARGV[3]), remaining)
if units < 1 or units < tonumber(ARGV[4]) then
  return {0, remaining}
end
remaining = redis.call('DECRBY', KEYS[1], units)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ':' .. units)
return {units, remaining}

-- shard_take.lua: second step of a stock transfer between two shards of one flash sale: add
-- the units a sibling gave (shard_give.lua) to this shard, once per transfer id.
--
-- KEYS[1] remaining stock of this shard
-- KEYS[2] ids of the transfers this shard has taken in (set)
-- KEYS[3] meta hash of this shard
-- All keys share this shard's hash tag.
--
-- ARGV[1] transfer id   ARGV[2] units
--
-- A closed shard takes the units too: its next settlement hands them to the SKU.
-- Returns {1, remaining} when added now, {0, remaining} when this transfer was taken before.
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then
  return {0, tonumber(redis.call('GET', KEYS[1]) or '0')}
end
return {1, redis.call('INCRBY', KEYS[1], tonumber(ARGV[2]))}

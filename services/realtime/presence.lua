-- The count of connected clients across replicas (services/realtime/presence.py).
-- KEYS[1] hash: worker id -> its count; KEYS[2] sorted set: worker id -> expiry;
-- KEYS[3] string: a sequence number, raised on every change.
-- ARGV[1] worker id; ARGV[2] its count, '' to only read, '-' to withdraw;
-- ARGV[3] lifetime of the entry in seconds; ARGV[4] the channel told of changes.
-- Expiry uses Redis' clock, so the replicas' clocks do not matter. Returns
-- {sequence, id1, count1, id2, count2, ...}; publishes the same, as JSON, on a change.
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local changed = false

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('HDEL', KEYS[1], unpack(expired))
  changed = true
end

local id, count, lifetime = ARGV[1], ARGV[2], tonumber(ARGV[3])
if count == '-' then
  if redis.call('HDEL', KEYS[1], id) == 1 then changed = true end
  redis.call('ZREM', KEYS[2], id)
elseif count ~= '' then
  if redis.call('HGET', KEYS[1], id) ~= count then changed = true end
  redis.call('HSET', KEYS[1], id, count)
  redis.call('ZADD', KEYS[2], now + lifetime, id)
end

-- The sequence only grows, even when the keys are lost while the workers stay
-- subscribed (FLUSHALL, eviction): Redis' clock in microseconds, or one more than the
-- last. A string: Lua's numbers and cjson would round 16 digits.
local sequence = redis.call('GET', KEYS[3]) or '0'
if changed then
  local clock = tonumber(time[1]) * 1000000 + tonumber(time[2])
  sequence = string.format('%.0f', math.max(tonumber(sequence) + 1, clock))
  redis.call('SET', KEYS[3], sequence)
end
-- Nothing outlives the last replica by long (a removed deployment leaves no keys).
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, math.ceil(lifetime * 20)) end

local result = redis.call('HGETALL', KEYS[1])
table.insert(result, 1, sequence)
if changed then redis.call('PUBLISH', ARGV[4], cjson.encode(result)) end
return result

-- Idempotent history append for one (topic, partition) batch. Atomic: runs as one Redis script.
-- KEYS[1]     watermark hash (field = partition, value = highest applied offset)
-- KEYS[2..n]  history list of each action's user (one key per action, repeats allowed)
-- ARGV[1]     partition   ARGV[2] cap   ARGV[3] ttl in ms (0 = none)
-- ARGV[2i], ARGV[2i+1] for i = 2..n: offset and encoded entry of the action whose key is KEYS[i]
local watermark = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
local cap = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local highest = watermark
local applied = 0
local touched = {}
for i = 2, #KEYS do
  local offset = tonumber(ARGV[2 * i])
  if offset > watermark then
    redis.call('RPUSH', KEYS[i], ARGV[2 * i + 1])
    touched[KEYS[i]] = true
    applied = applied + 1
    if offset > highest then highest = offset end
  end
end
for key, _ in pairs(touched) do
  redis.call('LTRIM', key, -cap, -1)
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
end
if highest > watermark then redis.call('HSET', KEYS[1], ARGV[1], highest) end
return applied

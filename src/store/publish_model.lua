-- Compare-and-set publication of the current model (the fence between two trainers).
-- KEYS[1]: the model hash. ARGV: version, then (field, value) pairs. Writes only when the version
-- is above the published one; returns 1 when written, 0 when fenced.
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if tonumber(ARGV[1]) <= current then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1

-- Compare-and-set publication of the current model (the fence between two trainers).
-- KEYS[1]: the model hash; KEYS[2]: the trainer lock. ARGV: instance, epoch, version, then (field,
-- value) pairs. Writes only while the lock holds this instance *and* epoch (a trainer whose lease
-- lapsed, even if it took the lock back since, carries an old epoch) and the version is above the
-- published one. Returns 1 when written, 0 when the version is not above the published one, -1
-- when this instance/epoch does not hold the lock.
if redis.call('GET', KEYS[2]) ~= ARGV[1] .. '|' .. ARGV[2] then return -1 end
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if tonumber(ARGV[3]) <= current then return 0 end
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'epoch', ARGV[2])
return 1

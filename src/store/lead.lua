-- The trainer lock: takes it when free, renews it when already ours. Returns 1 while held by ARGV[1].
-- KEYS[1]: the lock; ARGV[1]: this instance; ARGV[2]: TTL in ms.
local holder = redis.call('GET', KEYS[1])
if holder == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0

-- The trainer lock with a fencing token. Takes it when free (a new epoch: INCR of the epoch key),
-- renews it when already ours. Returns the holder's epoch while held by ARGV[1], 0 otherwise.
-- KEYS[1]: the lock; KEYS[2]: the epoch counter; ARGV[1]: this instance; ARGV[2]: TTL in ms.
local holder = redis.call('GET', KEYS[1])
if holder == false then
  local epoch = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1] .. '|' .. epoch, 'PX', ARGV[2])
  return epoch
end
local sep = string.find(holder, '|', 1, true)
if sep and string.sub(holder, 1, sep - 1) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(string.sub(holder, sep + 1))
end
return 0

-- Retires the published model lineage. KEYS[1]: the model hash; KEYS[2]: where the retired model is
-- kept (replacing one retired before). The model hash keeps only its version, the floor the next
-- lineage's versions continue above (consumers keep the highest version per item). Returns the
-- retired version, 0 when nothing was published.
local version = redis.call('HGET', KEYS[1], 'version')
if not version then return 0 end
if redis.call('HEXISTS', KEYS[1], 'manifest') == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'version', version)
return tonumber(version)

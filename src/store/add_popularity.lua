-- Adds actions to decayed popularity counts. KEYS[1]: one shard of the counts, a hash: field = item
-- id, value = "count:ms" (the count as of that time, in ms since the epoch).
-- ARGV[1] now (ms)  ARGV[2] half-life (ms, 0 = counts never decay), then (item id, delta) pairs.
-- A count is decayed to the later of its time and now before the delta is added (a writer whose
-- clock runs behind adds a delta decayed to the stored time instead).
local now, half = tonumber(ARGV[1]), tonumber(ARGV[2])
local function decay(count, from, to)
  if half > 0 and to > from then return count * 2 ^ (-(to - from) / half) end
  return count
end
for i = 3, #ARGV, 2 do
  local count, at = 0, now
  local stored = redis.call('HGET', KEYS[1], ARGV[i])
  if stored then
    local sep = string.find(stored, ':', 1, true)
    count, at = tonumber(string.sub(stored, 1, sep - 1)), tonumber(string.sub(stored, sep + 1))
  end
  local delta = tonumber(ARGV[i + 1])
  if at >= now then
    count = count + decay(delta, now, at)
  else
    count, at = decay(count, at, now) + delta, now
  end
  redis.call('HSET', KEYS[1], ARGV[i], string.format('%.17g:%d', count, at))
end
return 0

-- Idempotent history append for one (topic, partition) batch. Atomic: runs as one Redis script.
-- KEYS[1]                     watermark hash (field = partition, value = highest offset handled)
-- KEYS[2i], KEYS[2i+1]        history list and recent-event-id list of action i (i = 1..n)
-- ARGV[1] partition  ARGV[2] cap  ARGV[3] ttl in ms (0 = none)  ARGV[4] dedupe window (0 = off)
-- ARGV[5] highest offset the batch read in this partition (dead-lettered messages included)
-- ARGV[3i+3], ARGV[3i+4], ARGV[3i+5]: offset, encoded entry and event id of action i
-- Returns {applied, duplicates, refused index, ...}: an action at or below the watermark is a
-- replay (skipped); one whose event id is among its user's last `window` ids is a duplicate
-- (skipped); one whose keys hold another type is refused (0-based index; nothing written for it).
-- Types are checked before anything is written, so a refusal never leaves a partial write.
local watermark = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
local cap = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local n = (#KEYS - 1) / 2
local function usable(key, kind)
  local t = redis.call('TYPE', key)['ok']
  return t == 'none' or t == kind
end
local result = {0, 0}
local refused = {}
for i = 1, n do
  if not (usable(KEYS[2 * i], 'list') and usable(KEYS[2 * i + 1], 'list')) then
    refused[i] = true
    result[#result + 1] = i - 1
  end
end
local histories, id_lists = {}, {}
for i = 1, n do
  local offset = tonumber(ARGV[3 * i + 3])
  if offset > watermark and not refused[i] then
    local history, ids, id = KEYS[2 * i], KEYS[2 * i + 1], ARGV[3 * i + 5]
    local seen = false
    if window > 0 then
      for _, recent in ipairs(redis.call('LRANGE', ids, 0, window - 1)) do
        if recent == id then seen = true break end
      end
    end
    if seen then
      result[2] = result[2] + 1
    else
      redis.call('RPUSH', history, ARGV[3 * i + 4])
      histories[history] = true
      if window > 0 then
        redis.call('LPUSH', ids, id)
        redis.call('LTRIM', ids, 0, window - 1)
        id_lists[ids] = true
      end
      result[1] = result[1] + 1
    end
  end
end
for key, _ in pairs(histories) do
  redis.call('LTRIM', key, -cap, -1)
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
end
if ttl > 0 then
  for key, _ in pairs(id_lists) do redis.call('PEXPIRE', key, ttl) end
end
local highest = tonumber(ARGV[5])
if highest > watermark then redis.call('HSET', KEYS[1], ARGV[1], highest) end
return result

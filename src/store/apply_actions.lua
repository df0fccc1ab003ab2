-- Idempotent history append for one (topic, partition) batch. Atomic: runs as one Redis script.
-- KEYS[1]                     watermark hash (field = partition, value = highest offset handled)
-- KEYS[2i], KEYS[2i+1]        history list and recent-event-id list of action i (i = 1..n)
-- ARGV[1] partition  ARGV[2] cap  ARGV[3] ttl in ms (0 = none)  ARGV[4] dedupe window (0 = off)
-- ARGV[5] highest offset the batch read in this partition (dead-lettered messages included)
-- ARGV[3i+3], ARGV[3i+4], ARGV[3i+5]: offset, encoded entry and event id of action i
-- Returns {applied, duplicates, refused index, ...}: an action at or below the watermark is a
-- replay (skipped); one whose event id is among its user's last `window` ids is a duplicate
-- (skipped); one whose keys hold another type is refused (0-based index; nothing written for it),
-- on replay too.
-- A refusal never leaves a partial write: the id list is searched (LPOS fails on another type)
-- and the history pushed (RPUSH fails on another type) before the id list is written.
-- Per action: LPOS (among the newest `window` ids only, so an id list trimmed at the end of the
-- script is searched correctly meanwhile) + RPUSH + LPUSH; per user: an LTRIM of each list that
-- went over its length, PEXPIRE.
local watermark = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
local cap = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local n = (#KEYS - 1) / 2
local result = {0, 0}
local histories, id_lists = {}, {}
local function failed(reply)
  return type(reply) == 'table' and reply.err ~= nil
end
local function usable(key)
  local t = redis.call('TYPE', key)['ok']
  return t == 'none' or t == 'list'
end
for i = 1, n do
  local offset = tonumber(ARGV[3 * i + 3])
  if offset > watermark then
    local history, ids, id = KEYS[2 * i], KEYS[2 * i + 1], ARGV[3 * i + 5]
    local seen, refused = false, false
    if window > 0 then
      local position = redis.pcall('LPOS', ids, id, 'MAXLEN', window)
      if failed(position) then refused = true else seen = position ~= false end
    end
    if refused then
      result[#result + 1] = i - 1
    elseif seen then
      result[2] = result[2] + 1
    else
      local length = redis.pcall('RPUSH', history, ARGV[3 * i + 4])
      if failed(length) then
        result[#result + 1] = i - 1
      else
        if length > cap then histories[history] = true
        elseif histories[history] == nil then histories[history] = false end
        if window > 0 then
          if redis.call('LPUSH', ids, id) > window then id_lists[ids] = true
          elseif id_lists[ids] == nil then id_lists[ids] = false end
        end
        result[1] = result[1] + 1
      end
    end
  elseif not (usable(KEYS[2 * i]) and (window == 0 or usable(KEYS[2 * i + 1]))) then
    -- A replay of a refused action is refused again, so that its dead letter is sent even if
    -- the first attempt crashed before sending it (only replays pay for the type checks).
    result[#result + 1] = i - 1
  end
end
for key, over_cap in pairs(histories) do
  if over_cap then redis.call('LTRIM', key, -cap, -1) end
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
end
for key, over_window in pairs(id_lists) do
  if over_window then redis.call('LTRIM', key, 0, window - 1) end
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
end
local highest = tonumber(ARGV[5])
if highest > watermark then redis.call('HSET', KEYS[1], ARGV[1], highest) end
return result

-- Idempotent history appends for the users of one slot, from one (topic, partition) batch, after
-- `history_core.lua`. Every key shares the slot (a user's keys share its hash tag).
-- KEYS[2j-1], KEYS[2j]  user j's history list and its watermark hash (field = partition, value =
--                       the highest offset of that partition applied to this user), j = 1..u
-- ARGV[1] partition  ARGV[2] cap  ARGV[3] ttl in ms (0 = none)  ARGV[4] dedupe window (0 = off)
-- ARGV[3i+2], ARGV[3i+3], ARGV[3i+4]: user j, offset and encoded entry of action i (i = 1..n,
-- offsets rising)
-- Returns one outcome per action (see the core; watermarks per user); per user: the watermark,
-- LTRIM when over the cap, PEXPIRE of both keys.
local partition, cap = ARGV[1], tonumber(ARGV[2])
local ttl, window = tonumber(ARGV[3]), tonumber(ARGV[4])
local result = {}
local marks, highest, lengths = {}, {}, {}
for i = 1, (#ARGV - 4) / 3 do
  local j, offset, entry = tonumber(ARGV[3 * i + 2]), tonumber(ARGV[3 * i + 3]), ARGV[3 * i + 4]
  local history = KEYS[2 * j - 1]
  if marks[j] == nil then
    local mark = redis.pcall('HGET', KEYS[2 * j], partition)
    if failed(mark) then marks[j] = false else marks[j] = tonumber(mark or '-1') end
  end
  if marks[j] == false then
    -- The watermark key holds another type: nothing is written for this user.
    result[i] = 3
  elseif offset > marks[j] then
    highest[j] = offset
    local outcome, length = append(history, entry, window)
    result[i] = outcome
    if length ~= nil then lengths[j] = length end
  else
    result[i] = replayed(history)
  end
end
for j, mark in pairs(highest) do
  redis.call('HSET', KEYS[2 * j], partition, mark)
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2 * j], ttl) end
  local length = lengths[j]
  if length ~= nil then
    if length > cap then redis.call('LTRIM', KEYS[2 * j - 1], -cap, -1) end
    if ttl > 0 then redis.call('PEXPIRE', KEYS[2 * j - 1], ttl) end
  end
end
return result

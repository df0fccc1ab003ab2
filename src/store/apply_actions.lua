-- Idempotent history appends for the users of one slot, from one (topic, partition) batch.
-- Atomic: runs as one Redis script; every key shares the slot (a user's keys share its hash tag).
-- KEYS[2j-1], KEYS[2j]  user j's history list and its watermark hash (field = partition, value =
--                       the highest offset of that partition applied to this user), j = 1..u
-- ARGV[1] partition  ARGV[2] cap  ARGV[3] ttl in ms (0 = none)  ARGV[4] dedupe window (0 = off)
-- ARGV[3i+2], ARGV[3i+3], ARGV[3i+4]: user j, offset and encoded entry of action i (i = 1..n,
-- offsets rising)
-- Returns one outcome per action: 0 appended; 1 a replay (at or below its user's watermark:
-- skipped); 2 a resend (its entry equals one of its user's last `window` entries, same item,
-- action and millisecond: skipped); 3 refused (its key holds another type: nothing written for
-- it; on replay too).
-- Per action: LPOS from the tail (the last `window` entries only) + RPUSH, each failing on a key
-- of another type before anything is written; per user: the watermark, LTRIM when over the cap,
-- PEXPIRE of both keys.
local partition, cap = ARGV[1], tonumber(ARGV[2])
local ttl, window = tonumber(ARGV[3]), tonumber(ARGV[4])
local result = {}
local marks, highest, lengths = {}, {}, {}
local function failed(reply)
  return type(reply) == 'table' and reply.err ~= nil
end
for i = 1, (#ARGV - 4) / 3 do
  local j, offset, entry = tonumber(ARGV[3 * i + 2]), tonumber(ARGV[3 * i + 3]), ARGV[3 * i + 4]
  local history = KEYS[2 * j - 1]
  if marks[j] == nil then
    local mark = redis.pcall('HGET', KEYS[2 * j], partition)
    if failed(mark) then marks[j] = false else marks[j] = tonumber(mark or '-1') end
  end
  local seen, refused, replayed = false, marks[j] == false, false
  if refused then
    -- The watermark key holds another type: nothing is written for this user.
  elseif offset > marks[j] then
    highest[j] = offset
    if window > 0 then
      local position = redis.pcall('LPOS', history, entry, 'RANK', -1, 'MAXLEN', window)
      if failed(position) then refused = true else seen = position ~= false end
    end
    if not (refused or seen) then
      local length = redis.pcall('RPUSH', history, entry)
      if failed(length) then
        refused = true
      else
        lengths[j] = length
      end
    end
  else
    -- A replay of a refused action is refused again, so that its dead letter is sent even if
    -- the first attempt crashed before sending it (only replays pay for the type check).
    local t = redis.call('TYPE', history)['ok']
    if t ~= 'none' and t ~= 'list' then refused = true else replayed = true end
  end
  if refused then result[i] = 3 elseif replayed then result[i] = 1
  elseif seen then result[i] = 2 else result[i] = 0 end
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

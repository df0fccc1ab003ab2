-- Idempotent history append for one (topic, partition) batch. Atomic: runs as one Redis script.
-- KEYS[1]                watermark hash (field = partition, value = highest offset handled)
-- KEYS[i + 1]            history list of action i (i = 1..n)
-- ARGV[1] partition  ARGV[2] cap  ARGV[3] ttl in ms (0 = none)  ARGV[4] dedupe window (0 = off)
-- ARGV[5] highest offset the batch read in this partition (dead-lettered messages included)
-- ARGV[2i+4], ARGV[2i+5]: offset and encoded entry of action i
-- Returns one outcome per action: 0 appended; 1 a replay (at or below the watermark: skipped);
-- 2 a resend (its entry equals one of its user's last `window` entries, same item, action and
-- millisecond: skipped); 3 refused (its key holds another type: nothing written for it; on replay
-- too).
-- Per action: LPOS from the tail (the last `window` entries only) + RPUSH, each failing on a key
-- of another type before anything is written; per user: LTRIM when over the cap, PEXPIRE.
local watermark = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
local cap = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local result = {}
local histories = {}
local function failed(reply)
  return type(reply) == 'table' and reply.err ~= nil
end
for i = 1, #KEYS - 1 do
  local history, entry = KEYS[i + 1], ARGV[2 * i + 5]
  if tonumber(ARGV[2 * i + 4]) > watermark then
    local seen, refused = false, false
    if window > 0 then
      local position = redis.pcall('LPOS', history, entry, 'RANK', -1, 'MAXLEN', window)
      if failed(position) then refused = true else seen = position ~= false end
    end
    if not (refused or seen) then
      local length = redis.pcall('RPUSH', history, entry)
      if failed(length) then
        refused = true
      else
        if length > cap then histories[history] = true
        elseif histories[history] == nil then histories[history] = false end
      end
    end
    if refused then result[i] = 3 elseif seen then result[i] = 2 else result[i] = 0 end
  else
    -- A replay of a refused action is refused again, so that its dead letter is sent even if
    -- the first attempt crashed before sending it (only replays pay for the type check).
    local t = redis.call('TYPE', history)['ok']
    if t ~= 'none' and t ~= 'list' then result[i] = 3 else result[i] = 1 end
  end
end
for key, over_cap in pairs(histories) do
  if over_cap then redis.call('LTRIM', key, -cap, -1) end
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
end
local highest = tonumber(ARGV[5])
if highest > watermark then redis.call('HSET', KEYS[1], ARGV[1], highest) end
return result

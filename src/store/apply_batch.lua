-- Idempotent history append for one (topic, partition) batch, after `history_core.lua`.
-- KEYS[1]                watermark hash (field = partition, value = highest offset handled)
-- KEYS[i + 1]            history list of action i (i = 1..n)
-- ARGV[1] partition  ARGV[2] cap  ARGV[3] ttl in ms (0 = none)  ARGV[4] dedupe window (0 = off)
-- ARGV[5] highest offset the batch read in this partition (dead-lettered messages included)
-- ARGV[2i+4], ARGV[2i+5]: offset and encoded entry of action i
-- Returns one outcome per action (see the core); per user: LTRIM when over the cap, PEXPIRE.
local watermark = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
local cap = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local result = {}
local histories = {}
for i = 1, #KEYS - 1 do
  local history, entry = KEYS[i + 1], ARGV[2 * i + 5]
  if tonumber(ARGV[2 * i + 4]) > watermark then
    local outcome, length = append(history, entry, window)
    result[i] = outcome
    if length ~= nil then
      if length > cap then histories[history] = true
      elseif histories[history] == nil then histories[history] = false end
    end
  else
    result[i] = replayed(history)
  end
end
for key, over_cap in pairs(histories) do
  if over_cap then redis.call('LTRIM', key, -cap, -1) end
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
end
local highest = tonumber(ARGV[5])
if highest > watermark then redis.call('HSET', KEYS[1], ARGV[1], highest) end
return result

-- The history-append core of both apply scripts (`apply_batch.lua`, `apply_actions.lua`): prepended
-- to each, so each still runs as one atomic script.
-- Outcomes: 0 appended; 1 a replay (at or below the watermark: skipped); 2 a resend (its entry
-- equals one of its user's last `window` entries, same item, action and millisecond: skipped);
-- 3 refused (its key holds another type: nothing written for it; on replay too).
local function failed(reply)
  return type(reply) == 'table' and reply.err ~= nil
end

-- One action above the watermark: LPOS from the tail (the last `window` entries only) + RPUSH,
-- each failing on a key of another type before anything is written. Returns its outcome and,
-- when appended, the list's new length.
local function append(history, entry, window)
  if window > 0 then
    local position = redis.pcall('LPOS', history, entry, 'RANK', -1, 'MAXLEN', window)
    if failed(position) then return 3 end
    if position ~= false then return 2 end
  end
  local length = redis.pcall('RPUSH', history, entry)
  if failed(length) then return 3 end
  return 0, length
end

-- One action at or below the watermark. A replay of a refused action is refused again, so that
-- its dead letter is sent even if the first attempt crashed before sending it (only replays pay
-- for the type check).
local function replayed(history)
  local t = redis.call('TYPE', history)['ok']
  if t ~= 'none' and t ~= 'list' then return 3 end
  return 1
end

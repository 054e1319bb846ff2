-- Lease up to `limit` due jobs of one lane, highest priority first.
-- ARGV: prefix, lane, limit, now (s), lease (s), consumer, promote (how many due jobs to move at most), shift (s).
-- Returns a flat list: priority, entry id, job data, for each job.
local lane, limit, now, lease = ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local consumer, promote, shift = ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])

-- Scheduled jobs that are due join their priority's stream.
local schedule = P .. 'due:' .. lane
local due = redis.call('ZRANGEBYSCORE', schedule, '-inf', now, 'LIMIT', 0, promote)
for _, id in ipairs(due) do
  local priority = redis.call('HGET', P .. 'job:' .. id, 'p')
  if priority then
    redis.call('XADD', stream_key(lane, priority), '*', 'j', id)
  end
end
if #due > 0 then
  redis.call('ZREM', schedule, unpack(due))
end

-- A lease runs out `lease` seconds after its entry was delivered, by Redis's clock (idle time), so workers whose
-- clocks disagree never take over each other's jobs early. `shift` is how far the caller's `now` is ahead of its
-- own clock: zero when sending, the time a test moves forward.
local min_idle = math.max(0, math.floor((lease - shift) * 1000))

local out = {}
local function take(priority, entries)
  for _, entry in ipairs(entries) do
    local id = entry[2][2]
    local data = id and redis.call('HGET', P .. 'job:' .. id, 'd')
    if data then
      table.insert(out, priority)
      table.insert(out, entry[1])
      table.insert(out, data)
    else
      finish_entry(lane, priority, entry[1])  -- its job was settled meanwhile
    end
  end
end

for _, priority in ipairs(PRIORITIES) do
  local wanted = limit - #out / 3
  if wanted <= 0 then break end
  local stream = stream_key(lane, priority)
  if redis.call('EXISTS', stream) == 1 then
    local claimed = redis.pcall('XAUTOCLAIM', stream, GROUP, consumer, min_idle, '0-0', 'COUNT', wanted)
    if type(claimed) == 'table' and claimed.err then
      -- NOGROUP: the stream outlived its group (Redis lost it, or the key was remade): make it again from the
      -- start of the stream, so no entry is skipped.
      redis.call('XGROUP', 'CREATE', stream, GROUP, '0')
      claimed = {'0-0', {}}
    end
    take(priority, claimed[2])
    wanted = limit - #out / 3
    if wanted > 0 then
      local read = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', wanted, 'STREAMS', stream, '>')
      if read then
        take(priority, read[1][2])
      end
    end
  end
end
return out

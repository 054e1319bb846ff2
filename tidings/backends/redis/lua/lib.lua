-- Helpers shared by every script (this file is put in front of each). ARGV[1] is the key prefix.
local P = ARGV[1]
local GROUP = 'workers'
local PRIORITIES = {'0', '10', '20', '30'}
local DEAD_LETTERS = 10000
local ATTEMPTS_KEPT = 100000
local FAILURES_KEPT = 50
local FAILURES_TTL = 8 * 86400

local function stream_key(lane, priority)
  return P .. 'q:' .. lane .. ':' .. priority
end

-- A job due by `now` joins its lane's stream for its priority at once; a later one waits in the lane's schedule
-- (a sorted set by run_at), which `lease` moves into the stream once it is due. `job` is {id, lane, priority,
-- run_at, data} with numbers as strings. (The caller wakes the workers afterwards, once for all the jobs that
-- arrive together.)
local function enqueue(job, now)
  redis.call('HSET', P .. 'job:' .. job.id, 'd', job.data, 'p', job.priority)
  if tonumber(job.run_at) <= tonumber(now) then
    redis.call('XADD', stream_key(job.lane, job.priority), '*', 'j', job.id)
  else
    redis.call('ZADD', P .. 'due:' .. job.lane, job.run_at, job.id)
  end
  redis.call('SADD', P .. 'lanes', job.lane)
end

-- Take an entry out of its stream: acknowledged, then deleted, so the stream holds only unfinished jobs.
local function finish_entry(lane, priority, entry)
  if entry ~= '' then
    local stream = stream_key(lane, priority)
    redis.call('XACK', stream, GROUP, entry)
    redis.call('XDEL', stream, entry)
  end
end

-- A verification is a hash of its fields, with `v` counting its versions (see `save.lua`).
local function verification_settled(id, outcome, now)
  local key = P .. 'ver:' .. id
  if redis.call('EXISTS', key) == 0 then return end
  if outcome == 'delivered' then
    redis.call('HINCRBY', key, 'delivered_count', 1)
  else
    local state = redis.call('HMGET', key, 'status', 'delivered_count')
    if state[1] ~= 'pending' or state[2] ~= '0' then return end
    redis.call('HSET', key, 'status', 'failed')
  end
  redis.call('HSET', key, 'updated_at', now)
  redis.call('HINCRBY', key, 'v', 1)
end

-- A delivery changes as `change` says: {status=, attempts_add=, attempts_set=, error=, clear_error=}; its message's
-- counts and the status index follow.
local function change_delivery(id, change, now)
  local key = P .. 'dlv:' .. id
  local old = redis.call('HMGET', key, 'status', 'message_id', 'seq')
  if not old[1] then return end
  if change.status and change.status ~= old[1] then
    local counts = P .. 'msg:' .. old[2] .. ':counts'
    redis.call('HINCRBY', counts, old[1], -1)
    redis.call('HINCRBY', counts, change.status, 1)
    redis.call('ZREM', P .. 'dlv:status:' .. old[1], id)
    redis.call('ZADD', P .. 'dlv:status:' .. change.status, old[3], id)
    redis.call('HSET', key, 'status', change.status)
  end
  if change.attempts_set then redis.call('HSET', key, 'attempts', change.attempts_set) end
  if change.attempts_add then redis.call('HINCRBY', key, 'attempts', change.attempts_add) end
  if change.error then redis.call('HSET', key, 'last_error', change.error) end
  if change.clear_error then redis.call('HDEL', key, 'last_error') end
  redis.call('HSET', key, 'updated_at', now)
end

-- Replace a verification's hash with the flat list of its text fields `fields` and its sealed code, and give it
-- version `version`.
local function put_verification(key, version, ttl, fields, sealed)
  redis.call('DEL', key)
  redis.call('HSET', key, 'v', version, 'sealed_code', sealed, unpack(fields))
  redis.call('EXPIRE', key, ttl)
end

-- The same arithmetic as `tidings.core.ratelimit.check_all` (GCRA, all limits or none), run here so that a limit
-- every node shares (a country's budget, say) is one atomic step rather than a contended read-modify-write.
-- `limits` is a list of {key, count, period}. Returns nil when allowed, else the refusing limit's index and the
-- seconds to wait.
local function consume_limits(limits, now)
  local updates, order = {}, {}
  local worst, worst_after = nil, -1
  for i, limit in ipairs(limits) do
    local key, count, period = P .. 'limit:' .. limit[1], tonumber(limit[2]), tonumber(limit[3])
    local tat = updates[key] or tonumber(redis.call('GET', key) or '')
    local base = (tat == nil or tat < now) and now or tat
    local new_tat = base + period / count
    local allow_at = new_tat - period
    if now < allow_at then
      if allow_at - now > worst_after then worst, worst_after = i, allow_at - now end
    else
      if not updates[key] then table.insert(order, key) end
      updates[key] = new_tat
    end
  end
  if worst then return worst, worst_after end
  for _, key in ipairs(order) do
    redis.call('SET', key, string.format('%.17g', updates[key]), 'PXAT', math.ceil(updates[key] * 1000))
  end
  return nil
end

-- A push service said a subscription or device token is gone: the delivery's subscriber loses that channel (the
-- first item of each entry of record[channel] is its endpoint or token). Returns true when it still had it.
local function forget_channel(delivery, now)
  local found = redis.call('HMGET', P .. 'dlv:' .. delivery, 'subscriber_id', 'channel', 'target')
  if not found[1] then return false end
  local key = P .. 'sub:' .. found[1]
  local record = redis.call('HGET', key, 'record')
  if not record then return false end
  record = cjson.decode(record)
  local kept, removed = {}, false
  for _, entry in ipairs(record[found[2]] or {}) do
    if entry[1] == found[3] then removed = true else table.insert(kept, entry) end
  end
  if not removed then return false end
  record[found[2]] = kept
  redis.call('HSET', key, 'record', cjson.encode(record), 'updated_at', now)
  return true
end

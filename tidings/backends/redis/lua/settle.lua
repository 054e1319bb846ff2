-- Record outcomes of a batch of leased jobs, with what each job kind records of them, atomically.
-- ARGV: prefix, operations (JSON), now, consumer. An operation is {id, lane, priority, entry} plus `again` (a job
-- to schedule again), `dead` (the reason it was dropped) or neither (sent), and optionally `verification`,
-- `delivery`, `gone`, `stream` (what changes besides the queue), `report` (a job to queue if `gone` removed a
-- channel) and `attempt` (an audit record). Returns how many jobs left the queue and how many were queued.
local operations, now, consumer = cjson.decode(ARGV[2]), ARGV[3], ARGV[4]
local removed, queued = 0, 0

-- Only the lease holder settles: a worker whose lease ran out while it sent (and whose job another worker took
-- over, and may have settled) records nothing, so a job is neither brought back nor counted twice.
local function holds(op)
  if redis.call('EXISTS', P .. 'job:' .. op.id) == 0 then return false end
  if op.entry == '' then return true end
  local stream = stream_key(op.lane, op.priority)
  return #redis.call('XPENDING', stream, GROUP, op.entry, op.entry, 1, consumer) > 0
end

for _, op in ipairs(operations) do
  if holds(op) then
  finish_entry(op.lane, op.priority, op.entry)
  if op.again then
    enqueue(op.again, now)
  else
    redis.call('DEL', P .. 'job:' .. op.id)
    removed = removed + 1
    if op.dead then
      redis.call('XADD', P .. 'dead', 'MAXLEN', '~', DEAD_LETTERS, '*', 'job', op.id, 'lane', op.lane, 'reason', op.dead)
    end
  end
  if op.verification then verification_settled(op.verification[1], op.verification[2], now) end
  if op.delivery then change_delivery(op.id, op.delivery, now) end
  if op.stream then
    for _, id in ipairs(redis.call('ZRANGE', P .. 'msg:' .. op.stream[1] .. ':waiting', 0, -1)) do
      change_delivery(id, op.stream[2], now)
    end
    redis.call('DEL', P .. 'msg:' .. op.stream[1] .. ':waiting')
  end
  if op.gone and forget_channel(op.id, now) and op.report
     and redis.call('EXISTS', P .. 'job:' .. op.report.id) == 0 then
    enqueue(op.report, now)
    queued = queued + 1
  end
  if op.attempt then
    local a = op.attempt
    local entry = redis.call('XADD', P .. 'attempts', 'MAXLEN', '~', ATTEMPTS_KEPT, '*', 'job', op.id, 'kind', a[1],
                             'ref', a[2], 'provider', a[3], 'outcome', a[4], 'error', a[5], 'at', a[6])
    -- The failed tries of each verification or message, for "why did this user get no code": a short list by
    -- ref, written only when a try fails (a delivered one costs nothing more).
    if a[4] ~= 'delivered' then
      local key = P .. 'failures:' .. a[2]
      redis.call('RPUSH', key, cjson.encode({entry, op.id, a[1], a[2], a[3], a[4], a[5], a[6]}))
      redis.call('LTRIM', key, -FAILURES_KEPT, -1)
      redis.call('EXPIRE', key, FAILURES_TTL)
    end
  end
  end
end
return {removed, queued}

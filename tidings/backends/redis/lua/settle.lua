-- Record outcomes of a batch of leased jobs, with what each job kind records of them, atomically.
-- ARGV: prefix, operations (JSON), now. An operation is {id, lane, priority, entry} plus `again` (a job to
-- schedule again), `dead` (the reason it was dropped) or neither (sent), and optionally `verification`,
-- `delivery`, `stream` (what changes besides the queue) and `attempt` (an audit record).
-- Returns how many jobs left the queue.
local operations, now = cjson.decode(ARGV[2]), ARGV[3]
local removed = 0
for _, op in ipairs(operations) do
  finish_entry(op.lane, op.priority, op.entry)
  if op.again then
    enqueue(op.again)
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
  if op.attempt then
    local a = op.attempt
    redis.call('XADD', P .. 'attempts', 'MAXLEN', '~', ATTEMPTS_KEPT, '*', 'job', op.id, 'kind', a[1], 'ref', a[2],
               'provider', a[3], 'outcome', a[4], 'error', a[5], 'at', a[6])
  end
end
return removed

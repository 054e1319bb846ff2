-- Queue a message's failed deliveries again under the same ids. ARGV: prefix, message id, jobs (JSON list of
-- queued jobs, one per delivery the caller found failed, job id = delivery id), now. A delivery that is no longer
-- failed (another retry came first) is left alone. Returns how many were queued.
local jobs, now = cjson.decode(ARGV[3]), ARGV[4]
local queued = 0
for _, job in ipairs(jobs) do
  if redis.call('HGET', P .. 'dlv:' .. job.id, 'status') == 'failed' then
    change_delivery(job.id, {status = 'queued', attempts_set = 0, clear_error = true}, now)
    enqueue(job, now)
    queued = queued + 1
  end
end
return queued

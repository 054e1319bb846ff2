-- Queue a message's failed deliveries again under the same ids. ARGV: prefix, message id, jobs (JSON list of
-- queued jobs, one per failed delivery, job id = delivery id), now. Returns how many.
local jobs, now = cjson.decode(ARGV[3]), ARGV[4]
for _, job in ipairs(jobs) do
  change_delivery(job.id, {status = 'queued', attempts_set = 0, clear_error = true}, now)
  enqueue(job)
end
return #jobs

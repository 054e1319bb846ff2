-- Write a message, its deliveries and their jobs at once.
-- ARGV: prefix, message (JSON: id, record, created_at, expires_at, recipients, ttl), deliveries (JSON list of
-- field lists, without seq), jobs (JSON list of queued jobs), now.
local message, deliveries, jobs, now = cjson.decode(ARGV[2]), cjson.decode(ARGV[3]), cjson.decode(ARGV[4]), ARGV[5]
local key, ttl = P .. 'msg:' .. message.id, message.ttl
-- A message's deliveries are written once: a fan-out job run twice (its lease ran out while it wrote) writes nothing
-- the second time.
if #deliveries > 0 and redis.call('EXISTS', P .. 'dlv:' .. deliveries[1][2]) == 1 then return 0 end
redis.call('HSET', key, 'record', message.record, 'created_at', message.created_at,
           'expires_at', message.expires_at, 'recipients', message.recipients)
redis.call('EXPIRE', key, ttl)
local last = redis.call('INCRBY', P .. 'dlv:seq', #deliveries)
local seq = last - #deliveries
local counts = {}
for _, fields in ipairs(deliveries) do
  seq = seq + 1
  local id, status, channel = fields[2], fields[12], fields[8]
  local dkey = P .. 'dlv:' .. id
  redis.call('HSET', dkey, 'seq', seq, unpack(fields))
  redis.call('EXPIRE', dkey, ttl)
  redis.call('ZADD', key .. ':dlv', seq, id)
  redis.call('ZADD', P .. 'dlv:all', seq, id)
  redis.call('ZADD', P .. 'dlv:status:' .. status, seq, id)
  counts[status] = (counts[status] or 0) + 1
  if channel == 'stream' and status == 'queued' then
    redis.call('ZADD', key .. ':waiting', seq, id)
  end
end
for status, count in pairs(counts) do redis.call('HINCRBY', key .. ':counts', status, count) end
for _, suffix in ipairs({':waiting', ':counts'}) do redis.call('EXPIRE', key .. suffix, ttl) end
-- The list of its deliveries outlives them by a day: `purge.lua` reads it to take them out of the global indexes.
redis.call('EXPIRE', key .. ':dlv', ttl + 86400)
redis.call('ZADD', P .. 'messages', tonumber(now) + ttl, message.id)
redis.call('ZADD', P .. 'msgs', message.created_at, message.id)  -- the list of all, newest first (`lists.py`)
for _, job in ipairs(jobs) do enqueue(job, now) end
return #jobs

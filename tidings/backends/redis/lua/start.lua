-- Start or resend a verification: if the address's latest verification is still the one the caller read, pass
-- the limits, write the verification and queue its send, all at once.
-- ARGV: prefix, plan (JSON: id, expect, version, pointers, ttl, now, limits, job), then the verification's fields.
-- Returns {'ok'}, {'conflict'} (read again and retry) or {'limited', index, retry_after}.
local plan = cjson.decode(ARGV[2])
local current = redis.call('GET', plan.pointers[1]) or ''
if current ~= plan.expect then return {'conflict'} end
local key = P .. 'ver:' .. plan.id
if plan.expect ~= '' and (redis.call('HGET', key, 'v') or '') ~= plan.version then return {'conflict'} end
local now = tonumber(plan.now)
local refused, retry_after = consume_limits(plan.limits, now)
if refused then return {'limited', refused, string.format('%.17g', retry_after)} end
put_hash(key, tonumber(plan.version) + 1, plan.ttl, 3)
for _, pointer in ipairs(plan.pointers) do
  redis.call('SET', pointer, plan.id, 'EX', plan.ttl)
end
if plan.job ~= cjson.null then enqueue(plan.job, plan.now) end
return {'ok'}

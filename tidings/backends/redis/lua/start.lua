-- Start or resend a verification: if the address's latest verification is still the one the caller decided on
-- (`expect`, at `version`; '' for none), pass the limits, write the verification and queue its send, all at once.
-- ARGV: prefix, plan (JSON: id, created_at, fields, expect, version, pointers, ttl, now, limits, job), the sealed
-- code; the fields are the verification's text fields, a flat list of names and values. A new verification joins
-- the list of all (`vers`, see `lists.py`).
-- Returns {'ok'}, {'limited', index, retry_after}, or {'conflict', id, fields...} with the latest verification
-- as it is now (just {'conflict'} if there is none), for the caller to decide again.
local plan = cjson.decode(ARGV[2])
local current = redis.call('GET', plan.pointers[1]) or ''
local found = current ~= '' and redis.call('HGETALL', P .. 'ver:' .. current) or {}
if #found == 0 then current = '' end
if current ~= plan.expect or (current ~= '' and redis.call('HGET', P .. 'ver:' .. current, 'v') ~= plan.version) then
  if current == '' then return {'conflict'} end
  table.insert(found, 1, current)
  table.insert(found, 1, 'conflict')
  return found
end
local now = tonumber(plan.now)
local refused, retry_after = consume_limits(plan.limits, now)
if refused then return {'limited', refused, string.format('%.17g', retry_after)} end
-- A resend writes the same verification's next version; a new one (none, or the last one finished) starts at 1.
local version = plan.id == current and tonumber(plan.version) + 1 or 1
put_verification(P .. 'ver:' .. plan.id, version, plan.ttl, plan.fields, ARGV[3])
if version == 1 then redis.call('ZADD', P .. 'vers', plan.created_at, plan.id) end
for _, pointer in ipairs(plan.pointers) do
  redis.call('SET', pointer, plan.id, 'EX', plan.ttl)
end
if plan.job ~= cjson.null then enqueue(plan.job, now) end
return {'ok'}

-- Write a verification back if nobody changed it since the caller read version `version`.
-- ARGV: prefix, id, version, ttl, then its fields. Returns 1, or 0 on a conflict (read again and retry).
local key = P .. 'ver:' .. ARGV[2]
if redis.call('HGET', key, 'v') ~= ARGV[3] then return 0 end
put_hash(key, tonumber(ARGV[3]) + 1, ARGV[4], 5)
return 1

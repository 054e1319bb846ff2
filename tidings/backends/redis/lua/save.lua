-- Write a verification back if nobody changed it since the caller read version `version`.
-- ARGV: prefix, id, version, ttl, its text fields (a JSON list of names and values), its sealed code. Returns 1,
-- or 0 on a conflict (read again and retry).
local key = P .. 'ver:' .. ARGV[2]
if redis.call('HGET', key, 'v') ~= ARGV[3] then return 0 end
put_verification(key, tonumber(ARGV[3]) + 1, ARGV[4], cjson.decode(ARGV[5]), ARGV[6])
return 1

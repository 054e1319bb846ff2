-- The verification a pointer (an address's latest) names, as {id, fields...}, or {} when there is none.
-- ARGV: prefix, pointer key.
local id = redis.call('GET', ARGV[2])
if not id then return {} end
local fields = redis.call('HGETALL', P .. 'ver:' .. id)
if #fields == 0 then return {} end
table.insert(fields, 1, id)
return fields

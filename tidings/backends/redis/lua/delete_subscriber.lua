-- Remove a subscriber, its topic memberships and its stream cache (a later subscriber of the same id starts afresh).
-- ARGV: prefix, id. Returns 1 if it existed.
local key = P .. 'sub:' .. ARGV[2]
local topics = redis.call('HGET', key, 'topics')
if not topics then return 0 end
for _, topic in ipairs(cjson.decode(topics)) do redis.call('SREM', P .. 'topic:' .. topic, ARGV[2]) end
redis.call('DEL', key, P .. 'cache:' .. ARGV[2])
return 1

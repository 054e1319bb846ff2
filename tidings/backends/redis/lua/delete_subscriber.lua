-- Remove a subscriber, its topic memberships, its places in the lists and its stream cache (a later subscriber of
-- the same id starts afresh). ARGV: prefix, id. Returns 1 if it existed.
local id = ARGV[2]
local key = P .. 'sub:' .. id
local topics = redis.call('HGET', key, 'topics')
if not topics then return 0 end
for _, topic in ipairs(cjson.decode(topics)) do
  redis.call('SREM', P .. 'topic:' .. topic, id)
  redis.call('ZREM', P .. 'subs:topic:' .. topic, id)
end
redis.call('ZREM', P .. 'subs', id)
redis.call('DEL', key, P .. 'cache:' .. id)
return 1

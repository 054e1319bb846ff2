-- Create or replace a subscriber, moving it between topics, and keep it in the lists (see `lists.py`): all
-- subscribers and each topic's, by when it was created. ARGV: prefix, id, record, created_at, updated_at,
-- topics (JSON list). Returns {created_at, 1 if it was created}.
local id = ARGV[2]
local key = P .. 'sub:' .. id
local old = redis.call('HMGET', key, 'created_at', 'topics')
if old[2] then
  for _, topic in ipairs(cjson.decode(old[2])) do
    redis.call('SREM', P .. 'topic:' .. topic, id)
    redis.call('ZREM', P .. 'subs:topic:' .. topic, id)
  end
end
local created_at = old[1] or ARGV[4]
redis.call('HSET', key, 'record', ARGV[3], 'created_at', created_at, 'updated_at', ARGV[5], 'topics', ARGV[6])
for _, topic in ipairs(cjson.decode(ARGV[6])) do
  redis.call('SADD', P .. 'topic:' .. topic, id)
  redis.call('ZADD', P .. 'subs:topic:' .. topic, created_at, id)
end
redis.call('ZADD', P .. 'subs', created_at, id)
return {created_at, old[1] and 0 or 1}

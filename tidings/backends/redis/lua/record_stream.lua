-- Put a message in its recipients' stream caches and count its stream deliveries delivered.
-- ARGV: prefix, message id, subscriber ids (JSON list), now (s), cache age (s), cache size.
local id, subscribers, now = ARGV[2], cjson.decode(ARGV[3]), tonumber(ARGV[4])
local age, size = tonumber(ARGV[5]), tonumber(ARGV[6])
-- Scores are microseconds, nudged forward so that each entry sorts after the one before (replay's cursor). The
-- clock's key is outside cache:, where every name is a subscriber's (a subscriber may be called "clock").
local clock = P .. 'stream-clock'
local score = math.max(math.floor(now * 1e6), tonumber(redis.call('GET', clock) or '0') + 1)
redis.call('SET', clock, string.format('%d', score))
for _, subscriber in ipairs(subscribers) do
  local cache = P .. 'cache:' .. subscriber
  redis.call('ZADD', cache, string.format('%d', score), id)
  redis.call('ZREMRANGEBYSCORE', cache, '-inf', string.format('(%d', math.floor((now - age) * 1e6)))
  redis.call('ZREMRANGEBYRANK', cache, 0, -size - 1)
  redis.call('EXPIRE', cache, math.max(1, math.ceil(age)))
end
local waiting = P .. 'msg:' .. id .. ':waiting'
for _, delivery in ipairs(redis.call('ZRANGE', waiting, 0, -1)) do
  change_delivery(delivery, {status = 'delivered', attempts_add = 1, clear_error = true}, ARGV[4])
end
redis.call('DEL', waiting)

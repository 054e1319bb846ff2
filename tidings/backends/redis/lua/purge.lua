-- Take the deliveries of messages whose records have expired out of the global indexes, and the messages out of
-- the list of all (the records themselves went by TTL). ARGV: prefix, now, how many messages at most. Returns how
-- many messages and index entries went.
local now, most = ARGV[2], tonumber(ARGV[3])
local statuses = {'queued', 'delivered', 'failed', 'expired'}
local removed = 0
local messages = redis.call('ZRANGEBYSCORE', P .. 'messages', '-inf', now, 'LIMIT', 0, most)
for _, id in ipairs(messages) do
  local list = P .. 'msg:' .. id .. ':dlv'
  local deliveries = redis.call('ZRANGE', list, 0, -1)
  for start = 1, #deliveries, 1000 do
    local chunk = {unpack(deliveries, start, math.min(start + 999, #deliveries))}
    removed = removed + redis.call('ZREM', P .. 'dlv:all', unpack(chunk))
    for _, status in ipairs(statuses) do
      redis.call('ZREM', P .. 'dlv:status:' .. status, unpack(chunk))
    end
  end
  redis.call('DEL', list)
  redis.call('ZREM', P .. 'messages', id)
  removed = removed + redis.call('ZREM', P .. 'msgs', id)
end
return {#messages, removed}

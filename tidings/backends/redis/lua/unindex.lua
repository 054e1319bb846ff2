-- Remove list entries (see `lists.py`) whose record is gone, or, in a topic's index, whose subscriber left the
-- topic: checked again here, so that a record written since the caller looked keeps its entry.
-- ARGV: prefix, index (its name after the prefix), the records' key family ('ver:', 'msg:', 'sub:'), the topic
-- ('' for none), ids (JSON list). Returns how many entries went.
local index, family, topic, ids = P .. ARGV[2], P .. ARGV[3], ARGV[4], cjson.decode(ARGV[5])
local removed = 0
for _, id in ipairs(ids) do
  local key = family .. id
  local stale = redis.call('EXISTS', key) == 0
  if not stale and topic ~= '' then
    stale = true
    for _, listed in ipairs(cjson.decode(redis.call('HGET', key, 'topics') or '[]')) do
      if listed == topic then stale = false end
    end
  end
  if stale then removed = removed + redis.call('ZREM', index, id) end
end
return removed

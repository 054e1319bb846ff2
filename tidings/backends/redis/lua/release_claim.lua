-- Give up an Idempotency-Key's claim, unless an answer has taken its place meanwhile.
-- ARGV: prefix, the record's key, the status a claim has.
local record = redis.call('GET', ARGV[2])
if record and string.match(record, '^[^\n]*\n([^\n]*)\n') == ARGV[3] then
  redis.call('DEL', ARGV[2])
end
return 0

-- Sets or removes a node's request rate limit; a new limit keeps the most recent requests it
-- has room for, as the ledger does. Answers the previous limit ('' for none).
-- ARGV: now, '', '', node, requests ('' to remove), window nanoseconds, window microseconds.
local node = ARGV[4]
local k = nkey(node)
if redis.call('EXISTS', k) == 0 then return fail('unknown_node', '#' .. node) end
local previous = redis.call('HMGET', k, 'rq', 'rwn')
local log = base .. ':rate:' .. node
if ARGV[5] == '' then
  redis.call('HDEL', k, 'rq', 'rwn', 'rwu')
  redis.call('DEL', log)
else
  redis.call('HSET', k, 'rq', ARGV[5], 'rwn', ARGV[6], 'rwu', ARGV[7])
  if previous[1] then
    redis.call('LTRIM', log, -tonumber(ARGV[5]), -1)
  else
    redis.call('DEL', log)
  end
end
return {'ok', previous[1] or '', previous[2] or ''}

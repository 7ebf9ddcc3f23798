-- ARGV: now, '', '', node, state.
local k = nkey(ARGV[4])
local previous = redis.call('HGET', k, 'state')
if not previous then return fail('unknown_node', '#' .. ARGV[4]) end
redis.call('HSET', k, 'state', ARGV[5])
return {'ok', previous}

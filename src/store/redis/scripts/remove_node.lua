-- Removes a leaf without live holds, as the ledger does: a root, a node with children or one
-- with live holds is refused. Its reclaimed holds can no longer be committed late.
-- ARGV: now, '', '', node.
local node = ARGV[4]
local k = nkey(node)
local path = node_path(node)
if not path then return fail('unknown_node', '#' .. node) end
local parent = redis.call('HGET', k, 'parent')
if parent == '' then return fail('root_removal', path) end
local children = redis.call('SCARD', base .. ':kids:' .. node)
local live = 0
for _, hid in ipairs(redis.call('ZRANGE', base .. ':exp', 0, -1)) do
  if redis.call('HGET', hkey(hid), 'node') == node then live = live + 1 end
end
if children > 0 or live > 0 then
  return fail('in_use', path, tostring(children), tostring(live))
end
redis.call('DEL', k, base .. ':kids:' .. node, base .. ':rate:' .. node)
redis.call('HDEL', base .. ':paths', path)
redis.call('SREM', base .. ':kids:' .. parent, node)
return {'ok'}

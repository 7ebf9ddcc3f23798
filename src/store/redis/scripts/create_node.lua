-- ARGV: now, '', '', parent id ('' for a root), name, then per limit: unit, amount, kind, overage,
-- threshold levels ('<basis>:<percents>', '' for none), period spec and rollover ('' for none).
local parent, name = ARGV[4], ARGV[5]
-- A periodic limit starts its period now: its bounds must have come with the call.
local specs = {}
local i = 6
while ARGV[i] do
  table.insert(specs, ARGV[i + 5])
  i = i + 7
end
local needed = need_periods(specs)
if needed then return needed end
local path = name
if parent ~= '' then
  local ppath = node_path(parent)
  if not ppath then return fail('unknown_node', '#' .. parent) end
  path = ppath .. '/' .. name
end
if redis.call('HEXISTS', base .. ':paths', path) == 1 then return fail('duplicate', path) end
local id = fmt(redis.call('INCR', base .. ':next_node'))
local fields = {'path', path, 'name', name, 'parent', parent, 'state', 'active'}
i = 6
while ARGV[i] do
  local u = ARGV[i]
  table.insert(fields, 'l:' .. u); table.insert(fields, ARGV[i + 1])
  table.insert(fields, 'k:' .. u); table.insert(fields, ARGV[i + 2])
  table.insert(fields, 'o:' .. u); table.insert(fields, ARGV[i + 3])
  table.insert(fields, 't:' .. u); table.insert(fields, ARGV[i + 4])
  local spec = ARGV[i + 5]
  if spec ~= '' then
    for _, v in ipairs(period_fields(u, spec, tonumber(ARGV[i + 1]), ARGV[i + 6])) do table.insert(fields, v) end
    redis.call('SADD', base .. ':specs', spec)
  end
  i = i + 7
end
redis.call('HSET', nkey(id), unpack(fields))
redis.call('HSET', base .. ':paths', path, id)
if parent ~= '' then redis.call('SADD', base .. ':kids:' .. parent, id) end
return {'ok', id}

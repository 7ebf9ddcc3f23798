-- Reads. ARGV: now, '', '', what ('resolve', 'balance', 'info'), then its arguments.
local what = ARGV[4]
if what == 'resolve' then
  local id = redis.call('HGET', base .. ':paths', ARGV[5])
  if not id then return fail('unknown_path', ARGV[5]) end
  return {'ok', id}
end
if what == 'key' then
  -- What the ledger answers before it looks at a request's amounts, for a request on node
  -- ARGV[6] with idempotency key ARGV[5] ('' for none): with a key an unknown node, then the
  -- operation the key was first used for; then (for a reserve, ARGV[7] = 'rate') a rate
  -- refusal; else 'ok', ''.
  if not node_path(ARGV[6]) then
    if ARGV[5] ~= '' then return fail('unknown_node', '#' .. ARGV[6]) end
    return {'ok', ''}
  end
  local stored = ARGV[5] ~= '' and redis.call('GET', base .. ':k:' .. ARGV[5])
  if stored then return {'ok', string.match(stored, '^[^|\n]*')} end
  if ARGV[7] == 'rate' then
    local limited = rate_refusal(path_of(ARGV[6]), now_us())
    if limited then return limited end
  end
  return {'ok', ''}
end
-- Every other read rolls the periods it reads, as the ledger's reads do (a read that rolls
-- writes): every period in use must be able to roll at the script's time.
local needed = need_periods()
if needed then return needed end
if what == 'snapshot' then
  -- 'ok', next hold serial, node count, per node: path, state, rate limit (requests, window
  -- nanoseconds, '' for none), 10 balance fields per unit;
  -- then the live holds, each as a reclaimed-hold entry (id, path, deadline, unit=amount).
  -- Nodes in the ledger's order: the roots, then level by level, children in creation order.
  local last = num(redis.call('GET', base .. ':next_node'))
  local out = {'ok', fmt(num(redis.call('GET', base .. ':next_hold'))), ''}
  local order = {}
  for id = 1, last do
    local n = fmt(id)
    if redis.call('HGET', nkey(n), 'parent') == '' then table.insert(order, n) end
  end
  local next = 1
  while next <= #order do
    local kids = redis.call('SMEMBERS', base .. ':kids:' .. order[next])
    local ids = {}
    for _, kid in ipairs(kids) do table.insert(ids, tonumber(kid)) end
    table.sort(ids)
    for _, kid in ipairs(ids) do table.insert(order, fmt(kid)) end
    next = next + 1
  end
  roll_nodes(order)
  for _, n in ipairs(order) do
    table.insert(out, node_path(n))
    table.insert(out, redis.call('HGET', nkey(n), 'state'))
    local rate = redis.call('HMGET', nkey(n), 'rq', 'rwn')
    table.insert(out, rate[1] or '')
    table.insert(out, rate[2] or '')
    for _, u in ipairs(UNITS) do
      for _, v in ipairs(balance_of(n, u)) do table.insert(out, v) end
    end
  end
  out[3] = tostring(#order)
  for _, hid in ipairs(redis.call('ZRANGE', base .. ':exp', 0, -1)) do
    local h = hkey(hid)
    local entry = {hid, redis.call('HGET', h, 'path'), redis.call('HGET', h, 'exp')}
    for _, u in ipairs(UNITS) do
      local amount = redis.call('HGET', h, 'a:' .. u)
      if amount then table.insert(entry, u .. '=' .. amount .. '=' .. fmt(num(redis.call('HGET', h, 'p:' .. u)))) end
    end
    table.insert(out, table.concat(entry, '\30'))
  end
  return out
end
if what == 'cancel' then
  -- Why the hold's work should stop: 'none', 'ended', 'expired' + deadline, or 'frozen' /
  -- 'closed' / 'exhausted' + node path (+ unit), in the ledger's order.
  local h = hkey(ARGV[5])
  local node = redis.call('HGET', h, 'node')
  local ended = redis.call('HGET', h, 'end')
  if not node or ended == 'committed' or ended == 'released' then return {'ok', 'ended'} end
  if ended == 'expired' then return {'ok', 'expired', redis.call('HGET', h, 'exp')} end
  local path = path_of(node)
  roll_nodes(path)
  for _, n in ipairs(path) do
    local state = redis.call('HGET', nkey(n), 'state')
    if state ~= 'active' then return {'ok', state, node_path(n)} end
  end
  for _, n in ipairs(path) do
    for _, u in ipairs(UNITS) do
      if redis.call('HEXISTS', h, 'a:' .. u) == 1 then
        local b = balance_of(n, u)
        local spent_out = b[3] ~= '' and b[4] == 'hard' and tonumber(b[6]) >= tonumber(b[3])
        if tonumber(b[8]) > 0 or spent_out then return {'ok', 'exhausted', b[1], u} end
      end
    end
  end
  return {'ok', 'none'}
end
local node = ARGV[5]
local k = nkey(node)
if redis.call('EXISTS', k) == 0 then return fail('unknown_node', '#' .. node) end
roll_nodes({node})
if what == 'balance' then
  local out = {'ok'}
  for _, v in ipairs(balance_of(node, ARGV[6])) do table.insert(out, v) end
  return out
end
-- info: path, state, parent path, live holds, children count, children paths..., then per unit
-- the 10 balance fields, then the rate limit (requests, window nanoseconds; '' for none).
local parent = redis.call('HGET', k, 'parent')
local kids = redis.call('SMEMBERS', base .. ':kids:' .. node)
local live = 0
for _, hid in ipairs(redis.call('ZRANGE', base .. ':exp', 0, -1)) do
  if redis.call('HGET', hkey(hid), 'node') == node then live = live + 1 end
end
local out = {'ok', node_path(node), redis.call('HGET', k, 'state'), parent ~= '' and node_path(parent) or '', tostring(live), tostring(#kids)}
local paths = {}
for _, kid in ipairs(kids) do table.insert(paths, node_path(kid)) end
table.sort(paths)
for _, p in ipairs(paths) do table.insert(out, p) end
for _, u in ipairs(UNITS) do
  for _, v in ipairs(balance_of(node, u)) do table.insert(out, v) end
end
local rate = redis.call('HMGET', k, 'rq', 'rwn')
table.insert(out, rate[1] or '')
table.insert(out, rate[2] or '')
return out

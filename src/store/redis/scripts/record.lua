-- Records partial spend on a live hold, as the ledger's `record`: the hold grows first where
-- the recorded total runs past it and every node has room for the growth (zero grace: else
-- nothing is recorded). A closed node on the path refuses it.
-- ARGV: now, '', '', hold, then unit, amount pairs (the partial spend).
local needed = need_periods()
if needed then return needed end
local hid = ARGV[4]
local h = hkey(hid)
local node = redis.call('HGET', h, 'node')
if not node then return fail('unknown_hold', hid) end
local ended = redis.call('HGET', h, 'end')
if ended == 'expired' then return expired_refusal(hid) end
if ended then return fail('unknown_hold', hid) end
local path = path_of(node)
roll_nodes(path)
for _, n in ipairs(path) do
  if nget(n, 'state') == 'closed' then return fail('closed', node_path(n)) end
end
local partial = {}
local i = 5
while ARGV[i] do
  partial[ARGV[i]] = tonumber(ARGV[i + 1])
  i = i + 2
end
for _, u in ipairs(UNITS) do
  if partial[u] and redis.call('HEXISTS', h, 'a:' .. u) == 0 then
    local expected, first = nil, nil
    for _, v in ipairs(UNITS) do
      if redis.call('HEXISTS', h, 'a:' .. v) == 1 then
        first = first or v
        if not partial[v] then expected = expected or v end
      end
    end
    return fail('unit_mismatch_record', expected or first or 'usd', u)
  end
end
-- Growth must fit like a reserve of it: no debt on the path, room under every hard limit.
for _, u in ipairs(UNITS) do
  local amount = partial[u]
  if amount then
    local total = checked(num(redis.call('HGET', h, 'p:' .. u)) + amount, 'record')
    local growth = total - num(redis.call('HGET', h, 'a:' .. u))
    if growth > 0 then
      for _, n in ipairs(path) do
        for _, owed in ipairs(UNITS) do
          local debt = num(nget(n, 'd:' .. owed))
          if debt > 0 then return fail('in_debt', node_path(n), owed, fmt(debt)) end
        end
      end
      local tight, tight_room = nil, nil
      for _, n in ipairs(path) do
        local b = balance_of(n, u)
        checked(tonumber(b[6]) + tonumber(b[7]) + growth, 'record')
        local room = hard_room(n, u)
        if room ~= nil and (tight_room == nil or room < tight_room) then tight, tight_room = b, room end
      end
      if tight and growth > tight_room then
        return fail('exceeded', tight[1], tight[2], tight[3], tight[6], tight[7], fmt(growth), tight[12])
      end
    end
  end
end
for _, u in ipairs(UNITS) do
  local amount = partial[u]
  if amount then
    local held = num(redis.call('HGET', h, 'a:' .. u))
    local recorded = num(redis.call('HGET', h, 'p:' .. u))
    local growth = math.max(recorded + amount - held, 0)
    for _, n in ipairs(path) do
      nset(n, 's:' .. u, fmt(num(nget(n, 's:' .. u)) + amount), 'r:' .. u, fmt(num(nget(n, 'r:' .. u)) + growth - amount))
    end
    redis.call('HSET', h, 'a:' .. u, fmt(held + growth), 'p:' .. u, fmt(recorded + amount))
  end
end
return {'ok'}

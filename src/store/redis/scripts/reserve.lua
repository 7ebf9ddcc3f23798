-- ARGV: now, key, fingerprint, node, ttl (microseconds), then unit, amount pairs; or, for a
-- reserve-up-to, '~', unit, min, max (hold what the tightest hard limit has room for, within
-- min..max); or, for a check (the dry run), '?', then unit, amount pairs.
-- Reply: 'ok', hold, deadline, the node whose soft limit the hold passes ('' for none), the
-- amount held by a reserve-up-to ('' for a reserve), 'fresh' or 'replayed', the number of
-- threshold crossings, the crossings, then the reclaimed holds not reported yet.
-- Every period in use must be able to roll at the script's time (nothing is written before).
local needed = need_periods()
if needed then return needed end
-- As in the ledger, an unknown node is refused before the idempotency key is looked at.
if not node_path(ARGV[4]) then return fail('unknown_node', '#' .. ARGV[4]) end
local replay = remembered()
if replay then
  if replay[1] == 'ok' then
    local ended = redis.call('HGET', hkey(replay[2]), 'end')
    if ended then return fail('hold_ended', replay[2], ended) end
    table.insert(replay, 'replayed')
    table.insert(replay, '0')
  end
  return replay
end
local now = now_us()
local node = ARGV[4]
local leaf_path = node_path(node)
if not leaf_path then return fail('unknown_node', '#' .. node) end
local path = path_of(node)
-- The ledger rolls ended periods before anything else.
roll_nodes(path)
local dry = ARGV[6] == '?'
local soft = ''
-- A check answers 'ok', the refusal's field count and fields (none if it fits), the node whose
-- soft limit it passes, the path's length and every path node's balances (leaf first, every
-- unit), then the reclaimed holds not reported yet. A reserve answers the refusal itself.
local function refuse(refusal)
  if not dry then return refusal end
  local out = {'ok', tostring(refusal and #refusal or 0)}
  for _, v in ipairs(refusal or {}) do table.insert(out, v) end
  table.insert(out, soft)
  table.insert(out, tostring(#path))
  for _, n in ipairs(path) do
    for _, u in ipairs(UNITS) do
      for _, v in ipairs(balance_of(n, u)) do table.insert(out, v) end
    end
  end
  for _, entry in ipairs(take_unreported()) do table.insert(out, entry) end
  return out
end
-- The rate limits first, as in the ledger: a rate refusal holds nothing.
local limited = rate_refusal(path, now)
if limited then return refuse(limited) end
for _, n in ipairs(path) do
  local state = nget(n, 'state')
  if state == 'closed' then return refuse(fail('closed', node_path(n))) end
  if state == 'frozen' then return refuse(fail('frozen', node_path(n))) end
end
local asks = {}
local up_to = nil
if dry then
  local i = 7
  while ARGV[i] do
    table.insert(asks, {ARGV[i], tonumber(ARGV[i + 1])})
    i = i + 2
  end
elseif ARGV[6] == '~' then
  up_to = {min = tonumber(ARGV[8]), max = tonumber(ARGV[9])}
  asks[1] = {ARGV[7], up_to.max}
else
  local i = 6
  while ARGV[i] do
    table.insert(asks, {ARGV[i], tonumber(ARGV[i + 1])})
    i = i + 2
  end
end
-- A node in debt in any unit refuses new holds (the one nearest the leaf is named).
for _, n in ipairs(path) do
  for _, u in ipairs(UNITS) do
    local debt = num(nget(n, 'd:' .. u))
    if debt > 0 then return refuse(fail('in_debt', node_path(n), u, fmt(debt))) end
  end
end
-- The first unit's tightest hard limit without room, or nil; also the node whose soft limit
-- the first unit passing one passes with the least room left (the nearest the leaf on a tie).
-- A reserve-up-to asks for the least of its max and the tightest room, refused below its min.
local function denial()
  local soft = ''
  for _, ask in ipairs(asks) do
    local u = ask[1]
    if up_to then
      ask[2] = up_to.max
      for _, n in ipairs(path) do
        local room = hard_room(n, u)
        if room ~= nil then ask[2] = math.min(ask[2], room) end
      end
      if ask[2] < up_to.min then ask[2] = up_to.min end
    end
    local amount = ask[2]
    local tight, tight_room, soft_node, soft_room = nil, nil, nil, nil
    local fs, fr, fl, fk = 's:' .. u, 'r:' .. u, 'l:' .. u, 'k:' .. u
    for _, n in ipairs(path) do
      local h = node_fields(n) or {}
      local spent, reserved = num(h[fs]), num(h[fr])
      checked(spent + reserved + amount, 'reserve')
      local limit = h[fl]
      if limit and limit ~= '' then
        local room = tonumber(limit) - spent - reserved
        if h[fk] == 'hard' then
          if tight_room == nil or room < tight_room then tight, tight_room = n, room end
        elseif soft_room == nil or room < soft_room then
          soft_node, soft_room = h.path or '', room
        end
      end
    end
    if tight and amount > tight_room then return balance_of(tight, u), soft end
    if soft == '' and soft_node and amount > soft_room then soft = soft_node end
  end
  return nil, soft
end
local denied
denied, soft = denial()
local reclaimed = 0
if denied then
  reclaimed = reclaim(now)
  if reclaimed > 0 then denied, soft = denial() end
end
if denied then
  local requested = '0'
  for _, ask in ipairs(asks) do if ask[1] == denied[2] then requested = fmt(ask[2]) end end
  return refuse(fail('exceeded', denied[1], denied[2], denied[3], denied[6], denied[7], requested, denied[12]))
end
if dry then return refuse(nil) end
local hid = fmt(redis.call('INCR', base .. ':next_hold'))
local deadline = checked(now + tonumber(ARGV[5]), 'deadline')
local hold = {'node', node, 'path', leaf_path, 'exp', fmt(deadline)}
local crossings = {}
for _, ask in ipairs(asks) do
  local u, amount = ask[1], ask[2]
  for _, n in ipairs(path) do
    nset(n, 'r:' .. u, fmt(num(nget(n, 'r:' .. u)) + amount))
    watch(n, u, crossings)
  end
  table.insert(hold, 'a:' .. u); table.insert(hold, fmt(amount))
end
take_rate(path, now)
redis.call('HSET', hkey(hid), unpack(hold))
redis.call('ZADD', base .. ':exp', deadline, hid)
local granted = ''
if up_to then granted = fmt(asks[1][2]) end
local reply = remember({'ok', hid, fmt(deadline), soft, granted})
local out = {reply[1], reply[2], reply[3], reply[4], reply[5], 'fresh', tostring(#crossings)}
for _, entry in ipairs(crossing_entries(crossings)) do table.insert(out, entry) end
for _, entry in ipairs(take_unreported()) do table.insert(out, entry) end
return out

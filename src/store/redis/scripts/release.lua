-- ARGV: now, key, fingerprint, hold.
local needed = need_periods()
if needed then return needed end
local replay = remembered()
if replay then return replay end
local hid = ARGV[4]
local h = hkey(hid)
local hold = hold_fields(hid)
local node = hold.node
if not node or hold['end'] then return remember({'ok', '0'}) end
-- The periods roll before the holds shrink: a roll's carry never falls below what live
-- holds occupy, so it must see them as they were.
local path = path_of(node)
roll_nodes(path)
for _, u in ipairs(UNITS) do
  local held = num(hold['a:' .. u]) - num(hold['p:' .. u])
  if held ~= 0 then
    for _, n in ipairs(path) do
      nset(n, 'r:' .. u, fmt(num(nget(n, 'r:' .. u)) - held))
    end
  end
end
redis.call('HSET', h, 'end', 'released')
redis.call('PEXPIRE', h, KEY_TTL_MS)
redis.call('ZREM', base .. ':exp', hid)
return remember({'ok', '1'})

-- ARGV: now, key, fingerprint, hold, then unit, amount pairs (the actual cost).
local replay = remembered()
if replay then
  if replay[1] == 'ok' then table.insert(replay, 'replayed') end
  return replay
end
local hid = ARGV[4]
local h = hkey(hid)
local node = redis.call('HGET', h, 'node')
if not node then return fail('unknown_hold', hid) end
local ended = redis.call('HGET', h, 'end')
if ended == 'committed' or ended == 'released' then return fail('unknown_hold', hid) end
local actual = {}
local i = 5
while ARGV[i] do
  actual[ARGV[i]] = tonumber(ARGV[i + 1])
  i = i + 2
end
for _, u in ipairs(UNITS) do
  local held = redis.call('HGET', h, 'a:' .. u)
  if held and not actual[u] then return fail('unit_mismatch', u, '') end
  if actual[u] and not held then return fail('unit_mismatch', '', u) end
end
local path = path_of(node)
if ended == 'expired' then
  -- A late commit: the spend is charged without a hold, only where every hard limit has room.
  for u, amount in pairs(actual) do
    for _, n in ipairs(path) do
      local b = balance_of(n, u)
      checked(tonumber(b[6]) + amount, 'commit')
      if b[3] ~= '' and b[4] == 'hard' and tonumber(b[6]) + tonumber(b[7]) + amount > tonumber(b[3]) then
        return fail('expired', hid, redis.call('HGET', h, 'path'), redis.call('HGET', h, 'exp'))
      end
    end
  end
  for u, amount in pairs(actual) do
    for _, n in ipairs(path) do
      redis.call('HSET', nkey(n), 's:' .. u, fmt(num(redis.call('HGET', nkey(n), 's:' .. u)) + amount))
    end
  end
  redis.call('HSET', h, 'end', 'committed')
  local reply = {'ok', 'expired'}
  for u, amount in pairs(actual) do
    table.insert(reply, u .. '=' .. fmt(amount) .. '=0')
  end
  return remember(reply)
end
for u, amount in pairs(actual) do
  if amount > num(redis.call('HGET', h, 'a:' .. u)) then return fail('overage', u) end
end
local reply = {'ok', 'live'}
for u, amount in pairs(actual) do
  local held = num(redis.call('HGET', h, 'a:' .. u))
  for _, n in ipairs(path) do
    local k = nkey(n)
    local spent = checked(num(redis.call('HGET', k, 's:' .. u)) + amount, 'commit')
    redis.call('HSET', k, 's:' .. u, fmt(spent), 'r:' .. u, fmt(num(redis.call('HGET', k, 'r:' .. u)) - held))
  end
  table.insert(reply, u .. '=' .. fmt(amount) .. '=' .. fmt(held - amount))
end
redis.call('HSET', h, 'end', 'committed')
redis.call('PEXPIRE', h, KEY_TTL_MS)
redis.call('ZREM', base .. ':exp', hid)
return remember(reply)

-- Shared helpers, prepended to every operation script (see scripts.rs).
-- Money is integer minor units kept as decimal strings; Lua numbers are doubles, exact only
-- up to 2^53, so every amount read and every sum computed is checked against MAX.
-- Nothing is written before every check has passed: Redis does not roll back a script.
local MAX = 9007199254740991
local UNITS = {'usd', 'tokens', 'requests'}
local base = KEYS[1]
local KEY_TTL_MS = 86400000

local function fmt(n) return string.format('%.0f', n) end
local function num(s) if not s then return 0 end return tonumber(s) end
local function fail(...) return {'e', ...} end
local function checked(n, what)
  if n > MAX or n < -MAX then
    error({err = 'BG_OVERFLOW ' .. what})
  end
  return n
end

local function now_us()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function nkey(id) return base .. ':n:' .. id end
local function hkey(id) return base .. ':h:' .. id end

-- The path from `id` up to its root: a list of node ids, leaf first.
local function path_of(id)
  local path = {}
  local cur = id
  while cur and cur ~= '' do
    table.insert(path, cur)
    cur = redis.call('HGET', nkey(cur), 'parent')
  end
  return path
end

local function node_path(id) return redis.call('HGET', nkey(id), 'path') end

-- Ends every hold past its deadline: its reservation goes back on its whole path, and the
-- hold is remembered (for a late commit and for the next report) for the key TTL.
local function reclaim(now)
  local due = redis.call('ZRANGEBYSCORE', base .. ':exp', '-inf', now)
  for _, hid in ipairs(due) do
    local h = hkey(hid)
    local node = redis.call('HGET', h, 'node')
    local report = {hid, redis.call('HGET', h, 'path'), redis.call('HGET', h, 'exp')}
    for _, u in ipairs(UNITS) do
      local amount = num(redis.call('HGET', h, 'a:' .. u))
      if amount ~= 0 then
        for _, n in ipairs(path_of(node)) do
          redis.call('HSET', nkey(n), 'r:' .. u, fmt(num(redis.call('HGET', nkey(n), 'r:' .. u)) - amount))
        end
        table.insert(report, u .. '=' .. fmt(amount))
      end
    end
    redis.call('HSET', h, 'end', 'expired')
    redis.call('PEXPIRE', h, KEY_TTL_MS)
    redis.call('ZREM', base .. ':exp', hid)
    redis.call('RPUSH', base .. ':unrep', table.concat(report, '\30'))
  end
  redis.call('LTRIM', base .. ':unrep', -4096, -1)
  return #due
end

-- Reclaimed holds no operation reported yet, taken off the list.
local function take_unreported()
  local list = redis.call('LRANGE', base .. ':unrep', 0, -1)
  redis.call('DEL', base .. ':unrep')
  return list
end

-- Idempotency: ARGV[2] is the key ('' for none), ARGV[3] the request's fingerprint.
local function remembered()
  if ARGV[2] == '' then return nil end
  local stored = redis.call('GET', base .. ':k:' .. ARGV[2])
  if not stored then return nil end
  local sep = string.find(stored, '\n', 1, true)
  local fp = string.sub(stored, 1, sep - 1)
  if fp ~= ARGV[3] then
    return fail('mismatch', string.match(fp, '^[^|]*'))
  end
  local reply = {}
  for part in string.gmatch(string.sub(stored, sep + 1), '([^\31]*)\31') do
    table.insert(reply, part)
  end
  return reply
end

local function remember(reply)
  if ARGV[2] ~= '' then
    redis.call('SET', base .. ':k:' .. ARGV[2], ARGV[3] .. '\n' .. table.concat(reply, '\31') .. '\31', 'PX', KEY_TTL_MS)
  end
  return reply
end

-- The node's figures in one unit, as a reply fragment: path, unit, limit ('' if none), kind,
-- overage, spent, reserved, debt.
local function balance_of(id, u)
  local h = redis.call('HMGET', nkey(id), 'path', 'l:' .. u, 'k:' .. u, 'o:' .. u, 's:' .. u, 'r:' .. u, 'd:' .. u)
  return {h[1] or '', u, h[2] or '', h[3] or '', h[4] or '', h[5] or '0', h[6] or '0', h[7] or '0'}
end

-- Room left under the node's hard limit in unit `u` (negative when overdrawn), or nil for a
-- soft limit or none: the ledger's `hard_room_all` for a node with one cap per unit.
local function hard_room(n, u)
  local b = balance_of(n, u)
  if b[3] == '' or b[4] ~= 'hard' then return nil end
  return tonumber(b[3]) - tonumber(b[6]) - tonumber(b[7])
end

-- What of `extra` new spend fits under the node's hard limit (all of it without one).
local function fitting(n, u, extra)
  local room = hard_room(n, u)
  if room == nil then return extra end
  return math.min(extra, math.max(room, 0))
end

-- Takes `extra` new spend on node `n`: what fits under a hard limit is spent, the rest becomes
-- debt (the ledger's `Account::absorb`). Callers check the sums against MAX first.
local function absorb(n, u, extra)
  local k = nkey(n)
  local fits = fitting(n, u, extra)
  local h = redis.call('HMGET', k, 's:' .. u, 'd:' .. u)
  redis.call('HSET', k, 's:' .. u, fmt(num(h[1]) + fits), 'd:' .. u, fmt(num(h[2]) + extra - fits))
end

-- The first node on the path (leaf first) with a limit in unit `u`: its position, or nil.
local function governing_of(path, u)
  for i, n in ipairs(path) do
    if redis.call('HEXISTS', nkey(n), 'l:' .. u) == 1 then return i end
  end
  return nil
end

-- The overdraft an overage policy grants ('overdraft:<minor>'), or nil for another policy.
local function overdraft_of(policy)
  local text = string.match(policy or '', '^overdraft:(%-?%d+)$')
  if text then return tonumber(text) end
  return nil
end

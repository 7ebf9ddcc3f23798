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

-- ARGV[1] is the time ('' for the server's TIME, else microseconds from a test clock), then one
-- line per period the client knows to be in use: spec, period number, first and end
-- microsecond (rounded up), end in nanoseconds (text the scripts never compute with: it
-- exceeds 2^53), tab-separated. See periods.rs.
local TIME_ARG = ARGV[1]
local PERIODS = {}
do
  local newline = string.find(ARGV[1], '\n', 1, true)
  if newline then
    TIME_ARG = string.sub(ARGV[1], 1, newline - 1)
    for line in string.gmatch(string.sub(ARGV[1], newline + 1) .. '\n', '([^\n]*)\n') do
      local spec, id, s, e, ns = string.match(line, '^([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)$')
      if spec then
        PERIODS[spec] = {id = tonumber(id), id_text = id, s = tonumber(s), e = tonumber(e), e_text = e, ns = ns}
      end
    end
  end
end

-- The script's time, read once (every figure of one operation uses the same now).
local NOW = nil
local function now_us()
  if NOW then return NOW end
  if TIME_ARG ~= '' then
    NOW = tonumber(TIME_ARG)
  else
    local t = redis.call('TIME')
    NOW = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  return NOW
end

local function nkey(id) return base .. ':n:' .. id end
local function hkey(id) return base .. ':h:' .. id end

-- Node hashes are read once per script: NODES[id] holds the node's fields (false for a node
-- that does not exist), loaded with one HGETALL at first use. Every write to a node goes
-- through `nset`/`ndel`, which write to Redis at once and keep the copy in step, so a script
-- never reads a stale figure and pays one call per node instead of one per field.
local NODES = {}
local function node_fields(id)
  local f = NODES[id]
  if f == nil then
    f = false
    local flat = redis.call('HGETALL', nkey(id))
    if #flat > 0 then
      -- Sized for a node with one unit's limit up front (the constructor's fields size the
      -- table), so filling it does not grow it step by step.
      f = {path = nil, name = nil, parent = nil, state = nil, ['l:usd'] = nil, ['k:usd'] = nil,
        ['o:usd'] = nil, ['t:usd'] = nil, ['s:usd'] = nil, ['r:usd'] = nil, ['c:usd'] = nil,
        ['d:usd'] = nil, ['l:tokens'] = nil, ['s:tokens'] = nil, ['r:tokens'] = nil, rq = nil}
      for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
    end
    NODES[id] = f
  end
  return f
end

-- A hold's fields as a table, read with one HGETALL (empty for an unknown hold). For a script
-- that writes the hold only last.
local function hold_fields(hid)
  local flat = redis.call('HGETALL', hkey(hid))
  local hold = {}
  for i = 1, #flat, 2 do hold[flat[i]] = flat[i + 1] end
  return hold
end

-- One field of a node, or false (as HGET answers) when the node or the field is missing.
local function nget(id, name)
  local f = node_fields(id)
  return f and f[name] or false
end

-- HSET on a node: field, value pairs.
local function nset(id, ...)
  redis.call('HSET', nkey(id), ...)
  local f = NODES[id]
  if f then
    if select('#', ...) == 2 then
      local name, value = ...
      f[name] = value
    else
      local pairs_ = {...}
      for i = 1, #pairs_, 2 do f[pairs_[i]] = pairs_[i + 1] end
    end
  else
    NODES[id] = nil -- (re)created by this write: read it afresh when needed
  end
end

-- HDEL on a node: field names.
local function ndel(id, ...)
  redis.call('HDEL', nkey(id), ...)
  local f = NODES[id]
  if f then
    for _, name in ipairs({...}) do f[name] = nil end
  end
end

-- The path from `id` up to its root: a list of node ids, leaf first.
local function path_of(id)
  local path = {}
  local cur = id
  while cur and cur ~= '' do
    table.insert(path, cur)
    cur = nget(cur, 'parent')
  end
  return path
end

local function node_path(id) return nget(id, 'path') end

-- Reclaimed holds no operation reported yet, taken off the list.
local function take_unreported()
  local list = redis.call('LRANGE', base .. ':unrep', 0, -1)
  if #list > 0 then redis.call('DEL', base .. ':unrep') end
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
-- overage, spent, reserved, debt, threshold levels, whether the node owes debt in any unit.
local function balance_of(id, u)
  local h = node_fields(id) or {}
  local owes = num(h['d:usd']) > 0 or num(h['d:tokens']) > 0 or num(h['d:requests']) > 0
  return {h.path or '', u, h['l:' .. u] or '', h['k:' .. u] or '', h['o:' .. u] or '', h['s:' .. u] or '0', h['r:' .. u] or '0',
    h['d:' .. u] or '0', h['t:' .. u] or '', owes and '1' or '0',
    h['pa:' .. u] or '', h['pp:' .. u] or '', h['pro:' .. u] or '', h['pn:' .. u] or ''}
end

-- Room left under the node's hard limit in unit `u` (negative when overdrawn), or nil for a
-- soft limit or none: the ledger's `hard_room_all` for a node with one cap per unit.
local function hard_room(n, u)
  local h = node_fields(n) or {}
  local limit = h['l:' .. u]
  if not limit or limit == '' or h['k:' .. u] ~= 'hard' then return nil end
  return tonumber(limit) - num(h['s:' .. u]) - num(h['r:' .. u])
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
  local fits = fitting(n, u, extra)
  nset(n, 's:' .. u, fmt(num(nget(n, 's:' .. u)) + fits), 'd:' .. u, fmt(num(nget(n, 'd:' .. u)) + extra - fits))
end

-- The first node on the path (leaf first) with a limit in unit `u`: its position, or nil.
local function governing_of(path, u)
  for i, n in ipairs(path) do
    if nget(n, 'l:' .. u) then return i end
  end
  return nil
end

-- The overdraft an overage policy grants ('overdraft:<minor>'), or nil for another policy.
local function overdraft_of(policy)
  local text = string.match(policy or '', '^overdraft:(%-?%d+)$')
  if text then return tonumber(text) end
  return nil
end

-- Threshold levels. A limit's levels are kept beside it as 't:<unit>' = '<basis>:<p1>,<p2>,...'
-- (basis 'spent' or 'held', percents ascending) and the levels fired since they were last armed
-- as the bit set 'c:<unit>' (bit i for the i-th level), on the server, so each level fires once
-- across every process sharing the tree.

local function levels_of(spec)
  local levels = {}
  if not spec or spec == '' then return 'spent', levels end
  local basis, list = string.match(spec, '^(%a+):(.*)$')
  for p in string.gmatch(list, '%d+') do table.insert(levels, tonumber(p)) end
  return basis, levels
end

-- The minor units at which `percent` of `amount` is reached, rounded up, computed exactly
-- (a double's product would not be): math.huge when it lies beyond what any figure can reach.
local function level_minor(amount, percent)
  local rest = math.fmod(amount, 100)
  local whole = (amount - rest) / 100 * percent
  if whole > MAX then return math.huge end
  local part = rest * percent
  local over = math.fmod(part, 100)
  local level = whole + (part - over) / 100
  if over ~= 0 then level = level + 1 end
  return level
end

-- The ledger's `watch`: fires the levels of node `n`'s limit in unit `u` that its watched
-- figure (spend, or spend plus holds) has reached and that have not fired since they were last
-- armed. Each crossing is appended to `out` as {entry, node, unit, bit}.
local function watch(n, u, out)
  local h = node_fields(n) or {}
  local spec, limit = h['t:' .. u], h['l:' .. u]
  if not spec or spec == '' or not limit then return end
  -- The levels are ascending: below the lowest one none can fire, the usual case, told
  -- without parsing them all.
  local lowest = tonumber(string.match(spec, ':(%d+)'))
  if lowest then
    local watched = num(h['s:' .. u])
    if string.sub(spec, 1, 5) == 'held:' then watched = watched + num(h['r:' .. u]) end
    if watched < level_minor(tonumber(limit), lowest) then return end
  end
  local f = {spec, limit, h['c:' .. u], h['s:' .. u], h['r:' .. u], h.path, h['k:' .. u]}
  local basis, levels = levels_of(f[1])
  local amount, crossed, spent, reserved = tonumber(f[2]), num(f[3]), num(f[4]), num(f[5])
  local watched = spent
  if basis == 'held' then watched = spent + reserved end
  local fired = false
  for i, percent in ipairs(levels) do
    local mask = bit.lshift(1, i - 1)
    if bit.band(crossed, mask) == 0 and watched >= level_minor(amount, percent) then
      crossed = bit.bor(crossed, mask)
      fired = true
      local entry = table.concat({f[6], n, u, f[2], fmt(spent), fmt(reserved), tostring(i - 1), tostring(percent), f[7], basis}, '\30')
      table.insert(out, {entry, n, u, mask})
    end
  end
  if fired then nset(n, 'c:' .. u, tostring(crossed)) end
end

-- Watches unit `u` on every node of `path`, leaf first (the ledger's `scan_path`).
local function scan_path(path, u, out)
  for _, n in ipairs(path) do watch(n, u, out) end
end

-- Forgets crossings an operation could not report, so they fire at the next evaluation.
local function unmark(out)
  for _, c in ipairs(out) do
    local crossed = num(nget(c[2], 'c:' .. c[3]))
    nset(c[2], 'c:' .. c[3], tostring(bit.band(crossed, bit.bnot(c[4]))))
  end
end

-- Re-arms the levels spend is now below (after the limit changed, keeping its levels).
local function rearm(n, u)
  local h = node_fields(n) or {}
  local f = {h['t:' .. u], h['l:' .. u], h['c:' .. u], h['s:' .. u]}
  if not f[1] or f[1] == '' or not f[2] then return end
  local _, levels = levels_of(f[1])
  local crossed = num(f[3])
  for i, percent in ipairs(levels) do
    if num(f[4]) < level_minor(tonumber(f[2]), percent) then
      crossed = bit.band(crossed, bit.bnot(bit.lshift(1, i - 1)))
    end
  end
  nset(n, 'c:' .. u, tostring(crossed))
end

-- Periodic limits. A unit's limit with a period keeps, beside its figures, 'pp:<unit>' (the
-- period's spec), 'pa:<unit>' (the allocation), 'px:<unit>' (this period's extra: carried in,
-- plus credits, minus debits), 'pro:<unit>' (the rollover: '', 'alloc' or 'carry:<minor>'),
-- 'pi:<unit>' (the current period's number), 'pe:<unit>' (its end, microseconds rounded up)
-- and 'pn:<unit>' (its end in nanoseconds, as reported). 'l:<unit>' is the allowance,
-- max(allocation + extra, 0), so every rule that reads the limit reads this period's.
-- The set '<base>:specs' lists every period spec ever used in the tree.

-- Whether the tree has ever had a periodic limit (its spec set is not empty), as
-- `need_periods` read it; nil when not read. A tree without one has nothing to roll.
local PERIODS_USED = nil

-- The 'need' reply when a period in use (or one of `extra`) came without bounds that contain
-- the script's now; nil when every period can roll. Checked before anything is written.
local function need_periods(extra)
  local specs = redis.call('SMEMBERS', base .. ':specs')
  PERIODS_USED = #specs > 0
  -- Nothing to check (and no clock to read) without a period in use or asked for.
  local asked = false
  for _, spec in ipairs(extra or {}) do asked = asked or spec ~= '' end
  if not PERIODS_USED and not asked then return nil end
  local now = now_us()
  local missing, seen = {}, {}
  local function check(spec)
    if spec == '' or seen[spec] then return end
    seen[spec] = true
    local p = PERIODS[spec]
    if not p or not (p.s <= now and now < p.e) then table.insert(missing, spec) end
  end
  for _, spec in ipairs(specs) do check(spec) end
  for _, spec in ipairs(extra or {}) do check(spec) end
  if #missing == 0 then return nil end
  local out = {'need', fmt(now)}
  for _, spec in ipairs(missing) do table.insert(out, spec) end
  return out
end

-- The fields that start the current period of `spec` for a fresh limit of `allocation`.
local function period_fields(u, spec, allocation, rollover)
  local p = PERIODS[spec]
  return {'pp:' .. u, spec, 'pa:' .. u, fmt(allocation), 'px:' .. u, '0', 'pro:' .. u, rollover,
    'pi:' .. u, p.id_text, 'pe:' .. u, p.e_text, 'pn:' .. u, p.ns}
end

local function forget_period(n, u)
  ndel(n, 'pp:' .. u, 'pa:' .. u, 'px:' .. u, 'pro:' .. u, 'pi:' .. u, 'pe:' .. u, 'pn:' .. u)
end

-- The most one period may carry into the next (the ledger's `Rollover::cap_minor`).
local function rollover_cap(rollover, allocation)
  if rollover == 'alloc' then return allocation end
  local cap = string.match(rollover or '', '^carry:(%d+)$')
  if cap then return tonumber(cap) end
  return 0
end

-- The ledger's `Account::roll` for node `n`'s limit in unit `u`, if its period ended at or
-- before `now`: the unused rest carries (capped, never below what live holds occupy beyond
-- the allocation), each idle period between carries its allocation the same way, spend starts
-- from zero and the threshold levels re-arm.
local function roll(n, u, now)
  local h = node_fields(n) or {}
  local spec = h['pp:' .. u]
  if not spec or now < tonumber(h['pe:' .. u]) then return end
  local f = {spec, h['pe:' .. u], h['pi:' .. u], h['pa:' .. u], h['px:' .. u], h['pro:' .. u], h['l:' .. u], h['s:' .. u], h['r:' .. u]}
  local p = PERIODS[f[1]]
  local allocation = tonumber(f[4])
  local cap = rollover_cap(f[6], allocation)
  local floor = math.max(num(f[9]) - allocation, 0)
  local unused = math.max(tonumber(f[7]) - num(f[8]), 0)
  local carry = math.max(math.min(unused, cap), floor)
  -- The idle periods, each adding its allocation until the cap (a carry at or above the cap
  -- stays): the ledger's period-by-period loop in closed form, exact in doubles (every figure
  -- is at most 2^53 - 1 and `idle * allocation` is only formed below the gap to the cap).
  local idle = p.id - tonumber(f[3]) - 1
  if idle > 0 and allocation > 0 and carry < cap then
    local gap = cap - carry
    local rest = math.fmod(gap, allocation)
    local steps = (gap - rest) / allocation
    if rest > 0 then steps = steps + 1 end
    if idle >= steps then carry = cap else carry = carry + idle * allocation end
  end
  nset(n, 'px:' .. u, fmt(carry), 'l:' .. u, fmt(allocation + carry), 's:' .. u, '0',
    'pi:' .. u, p.id_text, 'pe:' .. u, p.e_text, 'pn:' .. u, p.ns)
  rearm(n, u)
end

-- Rolls every unit of every node of `nodes` (a path, or any list of node ids) at the
-- script's time (read only when the tree has periods).
local function roll_nodes(nodes)
  if PERIODS_USED == false then return end
  local now = now_us()
  for _, n in ipairs(nodes) do
    for _, u in ipairs(UNITS) do roll(n, u, now) end
  end
end

-- Ends every hold past its deadline: its reservation goes back on its whole path, and the
-- hold is remembered (for a late commit and for the next report) for the key TTL. The path's
-- periods roll first (the ledger rolls every period before it sweeps).
local function reclaim(now)
  local due = redis.call('ZRANGEBYSCORE', base .. ':exp', '-inf', now)
  for _, hid in ipairs(due) do
    local h = hkey(hid)
    local node = redis.call('HGET', h, 'node')
    roll_nodes(path_of(node))
    local report = {hid, redis.call('HGET', h, 'path'), redis.call('HGET', h, 'exp')}
    for _, u in ipairs(UNITS) do
      local held = redis.call('HGET', h, 'a:' .. u)
      if held then
        local recorded = num(redis.call('HGET', h, 'p:' .. u))
        local outstanding = tonumber(held) - recorded
        for _, n in ipairs(path_of(node)) do
          nset(n, 'r:' .. u, fmt(num(nget(n, 'r:' .. u)) - outstanding))
        end
        table.insert(report, u .. '=' .. held .. '=' .. fmt(recorded))
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

-- The crossings as reply entries.
local function crossing_entries(out)
  local entries = {}
  for _, c in ipairs(out) do table.insert(entries, c[1]) end
  return entries
end

-- The refusal for a hold reclaimed by expiry: its node by path, or by id once it is removed
-- (as the ledger names it).
local function expired_refusal(hid)
  local h = hkey(hid)
  local node = redis.call('HGET', h, 'node')
  if not node_fields(node) then
    return fail('expired_removed', hid, '#' .. node, redis.call('HGET', h, 'exp'))
  end
  return fail('expired', hid, node_path(node), redis.call('HGET', h, 'exp'))
end

-- Request rate limits, as the ledger's sliding log: a node's limit is 'rq' requests per
-- window ('rwn' nanoseconds as given, 'rwu' microseconds as the scripts count), and the list
-- '<base>:rate:<node>' keeps the times (server microseconds) of its last 'rq' granted holds.

-- How long until node `n` allows another request at `now`, or nil if it allows one now.
local function rate_wait(n, now)
  local f = {nget(n, 'rq'), nget(n, 'rwu')}
  if not f[1] then return nil end
  local log = base .. ':rate:' .. n
  if redis.call('LLEN', log) < tonumber(f[1]) then return nil end
  local frees = tonumber(redis.call('LINDEX', log, 0)) + tonumber(f[2])
  if frees > now then return frees - now end
  return nil
end

-- The refusal of the node on the path that must wait longest (the nearest the leaf on a tie),
-- or nil.
local function rate_refusal(path, now)
  local longest, at = nil, nil
  for _, n in ipairs(path) do
    local wait = rate_wait(n, now)
    if wait and (longest == nil or wait > longest) then longest, at = wait, n end
  end
  if longest == nil then return nil end
  local f = {nget(at, 'rq'), nget(at, 'rwn')}
  return fail('rate_limited', node_path(at), f[1], f[2], fmt(longest))
end

-- A granted hold takes one request on every rate-limited node of the path.
local function take_rate(path, now)
  for _, n in ipairs(path) do
    local requests = nget(n, 'rq')
    if requests then
      local log = base .. ':rate:' .. n
      redis.call('RPUSH', log, fmt(now))
      redis.call('LTRIM', log, -tonumber(requests), -1)
    end
  end
end

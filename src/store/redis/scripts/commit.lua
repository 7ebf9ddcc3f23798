-- ARGV: now, key, fingerprint, hold, then unit, amount pairs (the actual cost).
-- Reply: 'ok', 'live' or 'expired', then 'unit=spent=returned=overage' per unit, then the
-- threshold crossings (entries with fields separated by \30); or the refusal 'overage_rejected'
-- (remembered under the idempotency key like a result: the spend is booked). A replay reports
-- no crossings, as the ledger's does.
local needed = need_periods()
if needed then return needed end
local replay = remembered()
if replay then
  if replay[1] == 'ok' then table.insert(replay, 'replayed') end
  return replay
end
local hid = ARGV[4]
local h = hkey(hid)
-- The hold's fields, read once (this script writes only its end, last).
local hold = hold_fields(hid)
local node = hold.node
if not node then return fail('unknown_hold', hid) end
local ended = hold['end']
if ended == 'committed' or ended == 'released' then return fail('unknown_hold', hid) end
-- A reclaimed hold whose node was removed: the spend has nowhere to go.
if ended == 'expired' and not node_fields(node) then return expired_refusal(hid) end
local actual = {}
local i = 5
while ARGV[i] do
  actual[ARGV[i]] = tonumber(ARGV[i + 1])
  i = i + 2
end
-- The actual cost must name every unit held (it may name more: their spend is all overage).
-- The refusal names the ledger's `unit_difference`: a held unit the cost lacks, and a unit
-- of the cost the hold lacks (else the cost's first unit).
local held_units = {}
for _, u in ipairs(UNITS) do held_units[u] = hold['a:' .. u] ~= nil end
for _, missing in ipairs(UNITS) do
  if held_units[missing] and not actual[missing] then
    local found, first = nil, nil
    for _, u in ipairs(UNITS) do
      if actual[u] then
        first = first or u
        if not held_units[u] then found = found or u end
      end
    end
    return fail('unit_mismatch', missing, found or first or 'usd')
  end
end
local path = path_of(node)
-- The ledger rolls ended periods before anything else.
roll_nodes(path)

-- Fails with BG_OVERFLOW (before anything is written) when `extra` more spend could take a
-- figure of a node on the path past MAX: spent + reserved + debt + extra, as the ledger checks.
local function check_room_for_spend(u, extra)
  for _, n in ipairs(path) do
    local b = balance_of(n, u)
    checked(tonumber(b[6]) + tonumber(b[7]) + tonumber(b[8]) + extra, 'commit')
  end
end

-- The actual cost is the hold's total: never below what was recorded on it already
-- ('below_recorded', checked per unit in the ledger's order).
if ended == 'expired' then
  -- A late commit: the spend is new, with no hold behind it. It is booked where every hard
  -- limit has room, or where the governing node grants an overdraft every node's debt stays
  -- within (the ledger's `late_spend_fits`); else the commit is refused and changes nothing.
  for _, u in ipairs(UNITS) do
    local recorded = num(hold['p:' .. u])
    if actual[u] and actual[u] < recorded then
      return fail('below_recorded', u, fmt(actual[u]), fmt(recorded))
    end
    local extra = actual[u] and actual[u] - recorded
    if extra and extra > 0 then
      check_room_for_spend(u, extra)
      local fits = true
      for _, n in ipairs(path) do
        local room = hard_room(n, u)
        if room ~= nil and room < extra then fits = false end
      end
      if not fits then
        local governing = governing_of(path, u)
        local overdraft = governing and overdraft_of(balance_of(path[governing], u)[5])
        if overdraft == nil then fits = false else
          fits = true
          for _, n in ipairs(path) do
            local debt = tonumber(balance_of(n, u)[8])
            if debt + (extra - fitting(n, u, extra)) > overdraft then fits = false end
          end
        end
      end
      if not fits then
        return expired_refusal(hid)
      end
    end
  end
  local reply = {'ok', 'expired'}
  local crossings = {}
  for _, u in ipairs(UNITS) do
    if actual[u] then
      local extra = actual[u] - num(hold['p:' .. u])
      if extra > 0 then
        for _, n in ipairs(path) do absorb(n, u, extra) end
        scan_path(path, u, crossings)
      end
      table.insert(reply, u .. '=' .. fmt(actual[u]) .. '=0=0')
    end
  end
  redis.call('HSET', h, 'end', 'committed')
  remember(reply)
  for _, entry in ipairs(crossing_entries(crossings)) do table.insert(reply, entry) end
  return reply
end

-- The ledger's `charge_overage`: books `excess` spend above the hold on the path under the
-- governing node's overage policy (the reserving node's, else the nearest ancestor's with a
-- limit in the unit). Returns nil when the policy allows it, else the debt this charge
-- recorded (the most any node on the path took on from it).
local function charge_overage(u, excess)
  local before = {}
  for j, n in ipairs(path) do before[j] = num(nget(n, 'd:' .. u)) end
  local function recorded()
    local most = 0
    for j, n in ipairs(path) do
      most = math.max(most, num(nget(n, 'd:' .. u)) - before[j])
    end
    return most
  end
  local governing = governing_of(path, u)
  if governing == nil then
    for _, n in ipairs(path) do
      nset(n, 's:' .. u, fmt(num(nget(n, 's:' .. u)) + excess))
    end
    return nil
  end
  local limit = balance_of(path[governing], u)
  local overdraft = overdraft_of(limit[5])
  if overdraft ~= nil then
    for _, n in ipairs(path) do absorb(n, u, excess) end
    for _, n in ipairs(path) do
      if num(nget(n, 'd:' .. u)) > overdraft then return recorded() end
    end
    return nil
  end
  local reject = true
  if limit[5] == 'available' then
    reject = false
    for _, n in ipairs(path) do
      local room = hard_room(n, u)
      if room ~= nil and room < excess then reject = true end
    end
  end
  for j, n in ipairs(path) do
    if reject and j == governing and limit[4] == 'hard' then
      nset(n, 'd:' .. u, fmt(num(nget(n, 'd:' .. u)) + excess))
    else
      absorb(n, u, excess)
    end
  end
  if reject then return recorded() end
  return nil
end

for _, u in ipairs(UNITS) do
  local amount = actual[u]
  if amount then
    local recorded = num(hold['p:' .. u])
    if amount < recorded then return fail('below_recorded', u, fmt(amount), fmt(recorded)) end
    if amount > num(hold['a:' .. u]) then check_room_for_spend(u, amount - recorded) end
  end
end
local reply = {'ok', 'live'}
local crossings = {}
local rejection = nil
for _, u in ipairs(UNITS) do
  local amount = actual[u]
  if amount then
    local held = num(hold['a:' .. u])
    local recorded = num(hold['p:' .. u])
    local within = math.min(amount, held) - recorded
    for _, n in ipairs(path) do
      nset(n, 's:' .. u, fmt(num(nget(n, 's:' .. u)) + within), 'r:' .. u, fmt(num(nget(n, 'r:' .. u)) - (held - recorded)))
      watch(n, u, crossings)
    end
    local excess = amount - held
    if excess > 0 then
      local debt = charge_overage(u, excess)
      if debt ~= nil and rejection == nil then
        rejection = {u, fmt(held), fmt(amount), fmt(debt)}
      end
      scan_path(path, u, crossings)
    end
    table.insert(reply, u .. '=' .. fmt(amount) .. '=' .. fmt(math.max(held - amount, 0)) .. '=' .. fmt(math.max(excess, 0)))
  end
end
redis.call('HSET', h, 'end', 'committed')
redis.call('PEXPIRE', h, KEY_TTL_MS)
redis.call('ZREM', base .. ':exp', hid)
if rejection then
  -- The refusal cannot carry the crossings: they fire at the next evaluation instead.
  unmark(crossings)
  return remember(fail('overage_rejected', hold.path, rejection[1], rejection[2], rejection[3], rejection[4]))
end
remember(reply)
for _, entry in ipairs(crossing_entries(crossings)) do table.insert(reply, entry) end
return reply

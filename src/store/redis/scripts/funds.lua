-- Credit, debit, set-limit and remove-limit on one unit's limit, as the ledger's `set_limit`
-- does them: a hard limit may not go below spent + held, money added to a limit repays debt
-- first, and threshold levels re-arm where spend is now below them (or start armed when the
-- levels themselves change). On a periodic limit a credit or debit changes the current
-- period's allowance only (its extra), as the ledger's `fund_period`.
-- ARGV: now, key, fingerprint, node, unit, op ('credit', 'debit', 'set', 'remove'), amount,
-- kind, overage, threshold levels, period spec, rollover.
local node, u, op, amount = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local new_spec = ''
if op == 'set' then new_spec = ARGV[11] end
local needed = need_periods({new_spec})
if needed then return needed end
local k = nkey(node)
-- As in the ledger, an unknown node is refused before the idempotency key is looked at.
if redis.call('EXISTS', k) == 0 then return fail('unknown_node', '#' .. node) end
-- The ledger rolls ended periods before anything else (a replay answers with the rolled books).
roll_nodes({node})
local function balance_reply()
  local out = {'ok'}
  for _, v in ipairs(balance_of(node, u)) do table.insert(out, v) end
  return out
end
-- A retried credit or debit applies nothing again and answers with the balance now (a balance
-- is a reading of the books, not part of the operation's effect), as the ledger does.
local replay = remembered()
if replay then
  if replay[1] == 'ok' then return balance_reply() end
  return replay
end
local b = balance_of(node, u)
local old_spec = b[12]
if op == 'remove' then
  -- Without a limit nothing is beyond it: debt becomes plain spend, as in the ledger.
  local spent = checked(tonumber(b[6]) + tonumber(b[8]), 'remove limit')
  ndel(node, 'l:' .. u, 'k:' .. u, 'o:' .. u, 't:' .. u, 'c:' .. u)
  forget_period(node, u)
  nset(node, 's:' .. u, fmt(spent), 'd:' .. u, '0')
  return balance_reply()
end
if op ~= 'set' and b[3] == '' then return fail('not_budgeted', b[1], u) end
local spent, reserved, debt = tonumber(b[6]), tonumber(b[7]), tonumber(b[8])
local kind, overage, levels = b[4], b[5], nget(node, 't:' .. u) or ''
if op ~= 'set' and old_spec ~= '' then
  -- Funds of a periodic limit: this period's extra moves, the allocation stays.
  local allowance, allocation = tonumber(b[3]), tonumber(b[11])
  local extra = num(nget(node, 'px:' .. u))
  local repaid = 0
  if op == 'credit' then
    checked(allowance + amount, 'credit')
    extra = extra + amount
    repaid = math.min(debt, amount)
  else
    local lowered = allowance - amount
    if lowered < 0 or (kind == 'hard' and lowered < spent + reserved) then
      return fail('below_usage', b[1], u, fmt(math.max(lowered, 0)), b[6], b[7])
    end
    extra = extra - amount
  end
  nset(node, 'px:' .. u, fmt(extra), 'l:' .. u, fmt(math.max(allocation + extra, 0)),
    'd:' .. u, fmt(debt - repaid), 's:' .. u, fmt(spent + repaid))
  rearm(node, u)
  return remember(balance_reply())
end
local limit
local same_period = false
if op == 'set' then
  limit, kind, overage, levels = amount, ARGV[8], ARGV[9], ARGV[10]
  -- A limit of the same period keeps the current period and its extra; any other starts
  -- afresh (a new period starts now).
  same_period = new_spec ~= '' and new_spec == old_spec
  if same_period then
    limit = math.max(amount + num(nget(node, 'px:' .. u)), 0)
  end
elseif op == 'credit' then
  limit = checked(tonumber(b[3]) + amount, 'credit')
else
  limit = tonumber(b[3]) - amount
  if limit < 0 then return fail('below_usage', b[1], u, '0', b[6], b[7]) end
end
if kind == 'hard' and limit < spent + reserved then
  return fail('below_usage', b[1], u, fmt(limit), b[6], b[7])
end
local same_levels = b[3] ~= '' and (nget(node, 't:' .. u) or '') == levels
local repaid = 0
if b[3] ~= '' then
  -- Money added to the allocation (the limit's amount, not this period's extra) repays debt.
  local before, after = tonumber(b[3]), limit
  if old_spec ~= '' then before = tonumber(b[11]) end
  if op == 'set' then after = amount end
  repaid = math.min(debt, math.max(after - before, 0))
end
nset(node, 'l:' .. u, fmt(limit), 'k:' .. u, kind, 'o:' .. u, overage, 't:' .. u, levels,
  'd:' .. u, fmt(debt - repaid), 's:' .. u, fmt(spent + repaid))
if new_spec == '' then
  forget_period(node, u)
elseif same_period then
  nset(node, 'pa:' .. u, fmt(amount), 'pro:' .. u, ARGV[12])
else
  nset(node, unpack(period_fields(u, new_spec, amount, ARGV[12])))
  redis.call('SADD', base .. ':specs', new_spec)
end
if same_levels then rearm(node, u) else nset(node, 'c:' .. u, '0') end
return remember(balance_reply())

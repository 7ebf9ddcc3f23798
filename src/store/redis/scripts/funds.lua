-- Credit, debit, set-limit and remove-limit on one unit's limit.
-- ARGV: now, key, fingerprint, node, unit, op ('credit', 'debit', 'set', 'remove'), amount,
-- kind, overage.
local replay = remembered()
if replay then return replay end
local node, u, op, amount = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local k = nkey(node)
if redis.call('EXISTS', k) == 0 then return fail('unknown_node', '#' .. node) end
local b = balance_of(node, u)
if op == 'remove' then
  -- Without a limit nothing is beyond it: debt becomes plain spend, as in the ledger.
  local spent = checked(tonumber(b[6]) + tonumber(b[8]), 'remove limit')
  redis.call('HDEL', k, 'l:' .. u, 'k:' .. u, 'o:' .. u)
  redis.call('HSET', k, 's:' .. u, fmt(spent), 'd:' .. u, '0')
  local out = {'ok'}
  for _, v in ipairs(balance_of(node, u)) do table.insert(out, v) end
  return out
end
if op ~= 'set' and b[3] == '' then return fail('not_budgeted', b[1], u) end
local spent, reserved, debt = tonumber(b[6]), tonumber(b[7]), tonumber(b[8])
local limit
if op == 'set' then
  limit = amount
  if limit < spent + reserved then return fail('below_usage', b[1], u, fmt(limit), b[6], b[7]) end
  redis.call('HSET', k, 'l:' .. u, fmt(limit), 'k:' .. u, ARGV[8], 'o:' .. u, ARGV[9])
elseif op == 'credit' then
  -- A credit raises the limit; it first repays debt (spend beyond the limit, which then counts
  -- as spent), as the ledger does.
  local repay = math.min(debt, amount)
  limit = checked(tonumber(b[3]) + amount, 'credit')
  checked(spent + repay, 'credit')
  redis.call('HSET', k, 'l:' .. u, fmt(limit), 'd:' .. u, fmt(debt - repay), 's:' .. u, fmt(spent + repay))
else
  limit = tonumber(b[3]) - amount
  if limit < spent + reserved then return fail('below_usage', b[1], u, fmt(math.max(limit, 0)), b[6], b[7]) end
  redis.call('HSET', k, 'l:' .. u, fmt(limit))
end
local out = {'ok'}
for _, v in ipairs(balance_of(node, u)) do table.insert(out, v) end
return remember(out)

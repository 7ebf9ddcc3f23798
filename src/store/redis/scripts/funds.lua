-- Credit, debit, set-limit and remove-limit on one unit's limit, as the ledger's `set_limit`
-- does them: a hard limit may not go below spent + held, money added to a limit repays debt
-- first, and threshold levels re-arm where spend is now below them (or start armed when the
-- levels themselves change).
-- ARGV: now, key, fingerprint, node, unit, op ('credit', 'debit', 'set', 'remove'), amount,
-- kind, overage, threshold levels.
local node, u, op, amount = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
local k = nkey(node)
-- As in the ledger, an unknown node is refused before the idempotency key is looked at.
if redis.call('EXISTS', k) == 0 then return fail('unknown_node', '#' .. node) end
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
if op == 'remove' then
  -- Without a limit nothing is beyond it: debt becomes plain spend, as in the ledger.
  local spent = checked(tonumber(b[6]) + tonumber(b[8]), 'remove limit')
  redis.call('HDEL', k, 'l:' .. u, 'k:' .. u, 'o:' .. u, 't:' .. u, 'c:' .. u)
  redis.call('HSET', k, 's:' .. u, fmt(spent), 'd:' .. u, '0')
  return balance_reply()
end
if op ~= 'set' and b[3] == '' then return fail('not_budgeted', b[1], u) end
local spent, reserved, debt = tonumber(b[6]), tonumber(b[7]), tonumber(b[8])
local kind, overage, levels = b[4], b[5], redis.call('HGET', k, 't:' .. u) or ''
local limit
if op == 'set' then
  limit, kind, overage, levels = amount, ARGV[8], ARGV[9], ARGV[10]
elseif op == 'credit' then
  limit = checked(tonumber(b[3]) + amount, 'credit')
else
  limit = tonumber(b[3]) - amount
  if limit < 0 then return fail('below_usage', b[1], u, '0', b[6], b[7]) end
end
if kind == 'hard' and limit < spent + reserved then
  return fail('below_usage', b[1], u, fmt(limit), b[6], b[7])
end
local same_levels = b[3] ~= '' and (redis.call('HGET', k, 't:' .. u) or '') == levels
local repaid = 0
if b[3] ~= '' then repaid = math.min(debt, math.max(limit - tonumber(b[3]), 0)) end
redis.call('HSET', k, 'l:' .. u, fmt(limit), 'k:' .. u, kind, 'o:' .. u, overage, 't:' .. u, levels,
  'd:' .. u, fmt(debt - repaid), 's:' .. u, fmt(spent + repaid))
if same_levels then rearm(node, u) else redis.call('HSET', k, 'c:' .. u, '0') end
return remember(balance_reply())

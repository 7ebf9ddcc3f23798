-- ARGV: now. Reclaims every hold past its deadline; returns those not reported before.
local needed = need_periods()
if needed then return needed end
reclaim(now_us())
local out = {'ok'}
for _, entry in ipairs(take_unreported()) do table.insert(out, entry) end
return out

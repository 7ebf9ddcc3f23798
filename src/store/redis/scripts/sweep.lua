-- ARGV: now. Reclaims every hold past its deadline; returns those not reported before.
reclaim(now_us())
local out = {'ok'}
for _, entry in ipairs(take_unreported()) do table.insert(out, entry) end
return out

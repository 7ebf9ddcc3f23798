-- ARGV: now, '', '', hold, ttl (microseconds).
local hid = ARGV[4]
local h = hkey(hid)
local node = redis.call('HGET', h, 'node')
if not node then return fail('unknown_hold', hid) end
local ended = redis.call('HGET', h, 'end')
if ended == 'expired' then
  return expired_refusal(hid)
end
if ended then return fail('unknown_hold', hid) end
local deadline = checked(now_us() + tonumber(ARGV[5]), 'deadline')
redis.call('HSET', h, 'exp', fmt(deadline))
redis.call('ZADD', base .. ':exp', deadline, hid)
return {'ok', fmt(deadline)}

-- The state the token bucket and GCRA keep on Redis, shared by bucket.lua (decide),
-- bucket_lease.lua (lease) and bucket_settle.lua (settle): each script is this fragment
-- followed by its own body, put together at compile time (algorithm/token_bucket/redis.rs),
-- so the clock, the state's reading and its writing have one home. The state is the
-- instant the bucket is full again (GCRA's theoretical arrival time, TAT), in µs.

-- now in µs: the caller's `arg`, or the server's TIME when it is absent. Also returns
-- the least TTL in ms (on the caller's time every TTL is at least a minute: TTLs run on
-- Redis's clock, which may run faster than the caller's, and no key may expire before
-- its time) and whether now is Redis's own Unix time.
local function bucket_clock(arg)
  if arg then
    return arg + 0, 60000, false
  end
  local t = redis.call('TIME')
  return t[1] * 1000000 + t[2], 0, true
end

-- The stored TAT (0 when absent) and the instant the refill counts from, max(TAT, now).
local function bucket_read(key, now)
  local tat = tonumber(redis.call('GET', key) or 0)
  if now > tat then
    return tat, now
  end
  return tat, tat
end

-- Stores `new_tat` so that the key vanishes when the bucket is full again (the state no
-- longer matters then). Integers formatted as such (cheaper than %.17g). On Redis's
-- clock the key expires at the TAT itself, rounded up to the millisecond (PXAT: Redis
-- need not rewrite a relative TTL into an absolute one); on the caller's, the TTL is
-- relative and at least `min_ttl`.
local function bucket_write(key, new_tat, now, min_ttl, unix)
  if unix then
    local at = new_tat + 999
    redis.call('SET', key, string.format('%d', new_tat), 'PXAT', string.format('%d', (at - at % 1000) / 1000))
  else
    local ms = new_tat - now + 999
    ms = (ms - ms % 1000) / 1000
    if ms < min_ttl then ms = min_ttl end
    redis.call('SET', key, string.format('%d', new_tat), 'PX', string.format('%d', ms))
  end
end


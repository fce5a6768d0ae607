-- Token bucket and GCRA, mirroring algorithm/token_bucket/mod.rs and algorithm/gcra/mod.rs in
-- integer microseconds. On Redis the two are one algorithm: the token bucket's state,
-- the instant the bucket is full again, is GCRA's theoretical arrival time (TAT), and a
-- request of some cost moves it by a fixed step if it is not too far ahead of now. The
-- caller folds the policy and the cost into that step and that bound, exactly, in
-- integers (every argument costs Redis CPU, so there are two).
-- KEYS[1]  the limiter key; its value is the TAT (the instant the bucket is full), in µs
-- ARGV[1]  step: how far the cost moves the TAT, in µs (GCRA: cost × T; token bucket:
--          ⌈cost × P / L⌉ for a refill of L tokens per P µs)
-- ARGV[2]  the latest TAT − now that still admits the cost (GCRA: tau − cost × T;
--          token bucket: ⌊(burst − cost) × P / L⌋), negative when it can never fit
-- ARGV[3]  now in µs; absent to use the server's TIME. On the caller's time every TTL
--          is at least a minute: TTLs run on Redis's clock, which may run faster than
--          the caller's, and no key may expire before its time
-- Returns one integer (cheaper for Redis than a table; the caller derives remaining and
-- retry-after from it and the policy): admitted, the new TAT − now (the reset) ≥ 0;
-- denied, −(max(TAT, now) − now) − 1 < 0. A denial never writes; an admission stores
-- the new TAT with a TTL equal to the time until it is reached (the key vanishes exactly
-- when the bucket is full again and the state no longer matters).
local now, min_ttl, unix = ARGV[3], 0, false
if now then
  now, min_ttl = now + 0, 60000
else
  local t = redis.call('TIME')
  now, unix = t[1] * 1000000 + t[2], true
end
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
local base = tat
if now > tat then base = now end
if base - now > ARGV[2] + 0 then
  return now - base - 1
end
local new_tat = base + ARGV[1]
local ttl = new_tat - now
if new_tat ~= tat and ttl > 0 then
  -- Integers formatted as such (cheaper than %.17g). On Redis's clock the key expires
  -- at the TAT itself, rounded up to the millisecond (PXAT: Redis need not rewrite a
  -- relative TTL into an absolute one); on the caller's, the TTL is relative.
  if unix then
    local at = new_tat + 999
    redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PXAT', string.format('%d', (at - at % 1000) / 1000))
  else
    local ms = ttl + 999
    ms = (ms - ms % 1000) / 1000
    if ms < min_ttl then ms = min_ttl end
    redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', ms))
  end
end
return ttl

-- GCRA, mirroring algorithm/gcra.rs in integer microseconds.
-- KEYS[1]  the limiter key; its value is the theoretical arrival time (TAT), in µs
-- ARGV[1]  now in µs, or "" to use the server's TIME. On the caller's time every TTL
--          is at least a minute: TTLs run on Redis's clock, which may run faster than
--          the caller's, and no key may expire before its time
-- ARGV[2]  cost
-- ARGV[3]  emission interval T in µs;  ARGV[4]  tolerance tau = burst × T in µs
-- Returns one integer (cheaper for Redis than a table; the caller derives remaining and
-- retry-after from it and the policy): admitted, the new TAT − now (the reset) ≥ 0;
-- denied, −(max(TAT, now) − now) − 1 < 0. A denial never writes; an admission stores
-- the new TAT with a TTL equal to the time until it is reached (the key vanishes exactly
-- when it no longer matters).
local now, min_ttl = ARGV[1], 0
if now == '' then
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
else
  now, min_ttl = now + 0, 60000
end
local cost, t, tau = ARGV[2] + 0, ARGV[3] + 0, ARGV[4] + 0
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
local base = tat
if now > tat then base = now end
local new_tat = base + cost * t
if new_tat > now + tau then
  return now - base - 1
end
local ttl = new_tat - now
if new_tat ~= tat and ttl > 0 then
  local ms = math.ceil(ttl / 1000)
  if ms < min_ttl then ms = min_ttl end
  redis.call('SET', KEYS[1], new_tat, 'PX', ms)
end
return ttl

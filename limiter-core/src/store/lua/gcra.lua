-- GCRA, mirroring algorithm/gcra.rs in integer microseconds.
-- KEYS[1]  the limiter key; its value is the theoretical arrival time (TAT), in µs
-- ARGV[1]  now in µs, or "" to use the server's TIME
-- ARGV[2]  the shortest TTL in ms (0 on the server's TIME; more when the caller's clock
--          may run slower than Redis's, so that no key expires before its time)
-- ARGV[3]  cost
-- ARGV[4]  emission interval T in µs;  ARGV[5]  tolerance tau = burst × T in µs
-- Returns one integer (cheaper for Redis than a table; the caller derives remaining and
-- retry-after from it and the policy): admitted, the new TAT − now (the reset) ≥ 0;
-- denied, −(max(TAT, now) − now) − 1 < 0. A denial never writes; an admission stores
-- the new TAT with a TTL equal to the time until it is reached (the key vanishes exactly
-- when it no longer matters).
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
end
local min_ttl, cost, t, tau = ARGV[2] + 0, ARGV[3] + 0, ARGV[4] + 0, ARGV[5] + 0
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
local base = math.max(tat, now)
local new_tat = base + cost * t
local horizon = now + tau
if new_tat > horizon then
  return now - base - 1
end
local ttl = new_tat - now
if new_tat ~= tat and ttl > 0 then
  redis.call('SET', KEYS[1], new_tat, 'PX', math.max(math.ceil(ttl / 1000), min_ttl))
end
return ttl

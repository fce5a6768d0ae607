-- Token bucket, mirroring algorithm/token_bucket.rs in integer microseconds.
-- KEYS[1]  the limiter key; its value is the instant the bucket is full again, in µs
-- ARGV[1]  now in µs, or "" to use the server's TIME
-- ARGV[2]  the shortest TTL in ms (0 on the server's TIME; more when the caller's clock
--          may run slower than Redis's, so that no key expires before its time)
-- ARGV[3]  cost
-- ARGV[4]  refill: L tokens per ARGV[5] P µs (reduced);  ARGV[6]  burst
-- tokens(now) = burst − (full_at − now) × L / P, kept in "token-µs" to stay in integers.
-- Returns one integer (cheaper for Redis than a table; the caller derives remaining and
-- retry-after from it and the policy): admitted, the new full_at − now (the reset) ≥ 0;
-- denied, −(full_at − now) − 1 < 0. A denial never writes; an admission stores full_at
-- with a TTL equal to the time until the bucket is full.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
end
local min_ttl, cost = ARGV[2] + 0, ARGV[3] + 0
local l, p, burst = ARGV[4] + 0, ARGV[5] + 0, ARGV[6] + 0
local full_at = tonumber(redis.call('GET', KEYS[1]) or 0)
local deficit = math.max(full_at - now, 0)
local missing = deficit * l
local wanted = cost * p
local capacity = burst * p
if missing + wanted > capacity then
  return -deficit - 1
end
local new_full_at = math.max(full_at, now) + math.ceil(wanted / l)
local ttl = new_full_at - now
if new_full_at ~= full_at and ttl > 0 then
  redis.call('SET', KEYS[1], new_full_at, 'PX', math.max(math.ceil(ttl / 1000), min_ttl))
end
return ttl

-- Token bucket, mirroring algorithm/token_bucket.rs in integer microseconds.
-- KEYS[1]  the limiter key; its value is the instant the bucket is full again, in µs
-- ARGV[1]  now in µs, or "" to use the server's TIME. On the caller's time every TTL
--          is at least a minute: TTLs run on Redis's clock, which may run faster than
--          the caller's, and no key may expire before its time
-- ARGV[2]  cost
-- ARGV[3]  refill: L tokens per ARGV[4] P µs (reduced);  ARGV[5]  burst
-- tokens(now) = burst − (full_at − now) × L / P, kept in "token-µs" to stay in integers.
-- Returns one integer (cheaper for Redis than a table; the caller derives remaining and
-- retry-after from it and the policy): admitted, the new full_at − now (the reset) ≥ 0;
-- denied, −(full_at − now) − 1 < 0. A denial never writes; an admission stores full_at
-- with a TTL equal to the time until the bucket is full.
local now, min_ttl = ARGV[1], 0
if now == '' then
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
else
  now, min_ttl = now + 0, 60000
end
local cost, l, p, burst = ARGV[2] + 0, ARGV[3] + 0, ARGV[4] + 0, ARGV[5] + 0
local full_at = tonumber(redis.call('GET', KEYS[1]) or 0)
local deficit, start = full_at - now, full_at
if deficit < 0 then deficit, start = 0, now end
local wanted = cost * p
if deficit * l + wanted > burst * p then
  return -deficit - 1
end
local new_full_at = start + math.ceil(wanted / l)
local ttl = new_full_at - now
if new_full_at ~= full_at and ttl > 0 then
  local ms = math.ceil(ttl / 1000)
  if ms < min_ttl then ms = min_ttl end
  redis.call('SET', KEYS[1], new_full_at, 'PX', ms)
end
return ttl

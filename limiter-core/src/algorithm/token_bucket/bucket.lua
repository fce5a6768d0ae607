-- Token bucket and GCRA, mirroring algorithm/token_bucket/mod.rs and algorithm/gcra/mod.rs in
-- integer microseconds (after bucket_state.lua: the clock, reading and writing the TAT).
-- On Redis the two are one algorithm: the token bucket's state, the instant the bucket
-- is full again, is GCRA's theoretical arrival time (TAT), and a request of some cost
-- moves it by a fixed step if it is not too far ahead of now. The caller folds the
-- policy and the cost into that step and that bound, exactly, in integers (every
-- argument costs Redis CPU, so there are two).
-- KEYS[1]  the limiter key; its value is the TAT (the instant the bucket is full), in µs
-- ARGV[1]  step: how far the cost moves the TAT, in µs (GCRA: cost × T; token bucket:
--          ⌈cost × P / L⌉ for a refill of L tokens per P µs)
-- ARGV[2]  the latest TAT − now that still admits the cost (GCRA: tau − cost × T;
--          token bucket: ⌊(burst − cost) × P / L⌋), negative when it can never fit
-- ARGV[3]  now in µs; absent to use the server's TIME (see bucket_clock)
-- Returns one integer (cheaper for Redis than a table; the caller derives remaining and
-- retry-after from it and the policy): admitted, the new TAT − now (the reset) ≥ 0;
-- denied, −(max(TAT, now) − now) − 1 < 0. A denial never writes; an admission stores
-- the new TAT with a TTL equal to the time until it is reached.
local now, min_ttl, unix = bucket_clock(ARGV[3])
local tat, base = bucket_read(KEYS[1], now)
if base - now > ARGV[2] + 0 then
  return now - base - 1
end
local new_tat = base + ARGV[1]
local ttl = new_tat - now
if new_tat ~= tat and ttl > 0 then
  bucket_write(KEYS[1], new_tat, now, min_ttl, unix)
end
return ttl

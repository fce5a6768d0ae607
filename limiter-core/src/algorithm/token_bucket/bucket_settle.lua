-- Settling a cost after the decision, for the token bucket and GCRA (algorithm/token_bucket/mod.rs
-- and algorithm/gcra/mod.rs, `settle`), in integer microseconds, on bucket.lua's state
-- (after bucket_state.lua: the clock, reading and writing the TAT).
-- KEYS[1]  the limiter key; its value is the TAT, in µs
-- ARGV[1]  how far the TAT moves, in µs: the actual cost's step minus the reserved
--          cost's (each ⌈cost × P / L⌉, as bucket.lua steps), negative for a refund
-- ARGV[2]  now in µs; absent to use the server's TIME (see bucket_clock)
-- Returns the new TAT − now ≥ 0: how far the bucket is from full, past the burst when the
-- balance is negative (the caller derives remaining and retry-after). The TAT moves from
-- max(TAT, now) and never below now (a full bucket stays full: no key is written).
local now, min_ttl, unix = bucket_clock(ARGV[2])
local tat, base = bucket_read(KEYS[1], now)
local new_tat = base + ARGV[1]
if new_tat <= now then
  if tat > now then redis.call('DEL', KEYS[1]) end
  return 0
end
if new_tat ~= tat then
  bucket_write(KEYS[1], new_tat, now, min_ttl, unix)
end
return new_tat - now

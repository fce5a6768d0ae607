-- A lease of token-bucket / GCRA tokens (store mode "lease"), on the state of
-- algorithm/token_bucket/bucket.lua (after bucket_state.lua: the clock, reading and
-- writing the TAT), mirroring store/lease.rs's `grant`: take up to `take` tokens as one
-- request of that cost would, or as many as there are if at least `need`; else take
-- nothing.
-- KEYS[1]  the limiter key (the same key bucket.lua decides on)
-- ARGV[1]  L, ARGV[2] P: the refill, L tokens per P µs (reduced: exact in doubles, as
--          the caller checks burst × P < 2^53)
-- ARGV[3]  burst
-- ARGV[4]  take: the most tokens to take
-- ARGV[5]  need: the fewest worth taking
-- ARGV[6]  now in µs; absent to use the server's TIME (see bucket_clock)
-- Returns, taken: {tokens taken, new TAT − now}; not enough: −(max(TAT, now) − now) − 1,
-- as bucket.lua's denial (the caller works out when `need` fits). A denial never writes.
local now, min_ttl, unix = bucket_clock(ARGV[6])
local l, p, burst = ARGV[1] + 0, ARGV[2] + 0, ARGV[3] + 0
local take, need = ARGV[4] + 0, ARGV[5] + 0
local _, base = bucket_read(KEYS[1], now)
local d = base - now
-- Tokens there now: burst − ⌈d × L / P⌉.
local owed = d * l
local used = (owed - owed % p) / p
if owed % p > 0 then used = used + 1 end
local avail = burst - used
if avail < need then
  return -d - 1
end
if avail < take then take = avail end
-- The TAT moves by ⌈take × P / L⌉, as bucket.lua's step for a cost of `take`.
local step = take * p
local advance = (step - step % l) / l
if step % l > 0 then advance = advance + 1 end
local new_tat = base + advance
bucket_write(KEYS[1], new_tat, now, min_ttl, unix)
return {take, new_tat - now}

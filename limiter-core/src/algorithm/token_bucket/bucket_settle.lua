-- Settling a cost after the decision, for the token bucket and GCRA (algorithm/token_bucket/mod.rs
-- and algorithm/gcra/mod.rs, `settle`), in integer microseconds: the state is bucket.lua's,
-- the instant the bucket is full again (GCRA's TAT).
-- KEYS[1]  the limiter key; its value is the TAT, in µs
-- ARGV[1]  how far the TAT moves, in µs: the actual cost's step minus the reserved
--          cost's (each ⌈cost × P / L⌉, as bucket.lua steps), negative for a refund
-- ARGV[2]  now in µs; absent to use the server's TIME (TTLs as in bucket.lua)
-- Returns the new TAT − now ≥ 0: how far the bucket is from full, past the burst when the
-- balance is negative (the caller derives remaining and retry-after). The TAT moves from
-- max(TAT, now) and never below now (a full bucket stays full: no key is written).
local now, min_ttl, unix = ARGV[2], 0, false
if now then
  now, min_ttl = now + 0, 60000
else
  local t = redis.call('TIME')
  now, unix = t[1] * 1000000 + t[2], true
end
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
local base = tat
if now > base then base = now end
local new_tat = base + ARGV[1]
if new_tat <= now then
  if tat > now then redis.call('DEL', KEYS[1]) end
  return 0
end
if new_tat ~= tat then
  if unix then
    local at = new_tat + 999
    redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PXAT', string.format('%d', (at - at % 1000) / 1000))
  else
    local ms = new_tat - now + 999
    ms = (ms - ms % 1000) / 1000
    if ms < min_ttl then ms = min_ttl end
    redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', ms))
  end
end
return new_tat - now

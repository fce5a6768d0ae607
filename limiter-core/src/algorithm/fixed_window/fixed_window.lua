-- Fixed window, mirroring algorithm/fixed_window/mod.rs in integer microseconds.
-- KEYS[1]  the limiter key; its value is one number, tag × 2^32 + count, where the tag
--          is the window index mod 2^20 (exact in Lua's doubles; the TTL ends the key
--          with its window, long before a tag could come round again)
-- ARGV[1]  cost;  ARGV[2]  window length in µs;  ARGV[3]  limit
-- ARGV[4]  now in µs; absent to use the server's TIME. On the caller's time every TTL
--          is at least a minute: TTLs run on Redis's clock, which may run faster than
--          the caller's, and no key may expire before its time
-- Windows are aligned to the epoch of the time (Unix time for the server's TIME).
-- Returns reset_after µs × (limit + 1) + remaining when admitted, its negation − 1 when
-- denied (retry-after is the reset): one integer, cheaper for Redis than a table; or,
-- where that product would pass 2^53, {remaining or −remaining − 1, reset_after µs}.
-- A denial never writes; an admission stores the count with a TTL until the window
-- ends: set by the window's first admission, kept (KEEPTTL, cheaper) by the others.
local now, min_ttl = ARGV[4], 0
if now then
  now, min_ttl = now + 0, 60000
else
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
end
local cost, window, limit = ARGV[1] + 0, ARGV[2] + 0, ARGV[3] + 0
local index = (now - now % window) / window
local tag, shift = index % 1048576, 4294967296
local count, same = 0, false
local v = tonumber(redis.call('GET', KEYS[1])) -- false (no key) gives nil
if v and (v - v % shift) / shift == tag then
  count, same = v % shift, true
end
local reset = (index + 1) * window - now
local one = (window + 1) * (limit + 1) < 9007199254740992
if count + cost > limit then
  if one then return -(reset * (limit + 1) + limit - count) - 1 end
  return {count - limit - 1, reset}
end
count = count + cost
if cost > 0 then
  -- Integers formatted as such (cheaper than %.17g).
  local value = string.format('%d', tag * shift + count)
  if same then
    redis.call('SET', KEYS[1], value, 'KEEPTTL')
  else
    local ms = reset + 999
    ms = (ms - ms % 1000) / 1000
    if ms < min_ttl then ms = min_ttl end
    redis.call('SET', KEYS[1], value, 'PX', string.format('%d', ms))
  end
end
if one then return reset * (limit + 1) + limit - count end
return {limit - count, reset}

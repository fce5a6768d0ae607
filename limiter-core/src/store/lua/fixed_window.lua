-- Fixed window, mirroring algorithm/fixed_window.rs in integer microseconds.
-- KEYS[1]  the limiter key; its value is one number, tag × 2^32 + count, where the tag
--          is the window index mod 2^20 (exact in Lua's doubles; the TTL ends the key
--          with its window, long before a tag could come round again)
-- ARGV[1]  now in µs, or "" to use the server's TIME. On the caller's time every TTL
--          is at least a minute: TTLs run on Redis's clock, which may run faster than
--          the caller's, and no key may expire before its time
-- ARGV[2]  cost;  ARGV[3]  window length in µs;  ARGV[4]  limit
-- Windows are aligned to the epoch of the time (Unix time for the server's TIME).
-- Returns reset_after µs × (limit + 1) + remaining when admitted, its negation − 1 when
-- denied (retry-after is the reset): one integer, cheaper for Redis than a table; or,
-- where that product would pass 2^53, {remaining or −remaining − 1, reset_after µs}.
-- A denial never writes; an admission stores the count with a TTL until the window ends.
local now, min_ttl = ARGV[1], 0
if now == '' then
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
else
  now, min_ttl = now + 0, 60000
end
local cost, window, limit = ARGV[2] + 0, ARGV[3] + 0, ARGV[4] + 0
local index = math.floor(now / window)
local tag, shift = index % 1048576, 4294967296
local count = 0
local v = tonumber(redis.call('GET', KEYS[1]) or 0)
if math.floor(v / shift) == tag then
  count = v % shift
end
local reset = (index + 1) * window - now
local one = (window + 1) * (limit + 1) < 9007199254740992
if count + cost > limit then
  if one then return -(reset * (limit + 1) + limit - count) - 1 end
  return {count - limit - 1, reset}
end
count = count + cost
if cost > 0 then
  local ms = math.ceil(reset / 1000)
  if ms < min_ttl then ms = min_ttl end
  redis.call('SET', KEYS[1], tag * shift + count, 'PX', ms)
end
if one then return reset * (limit + 1) + limit - count end
return {limit - count, reset}

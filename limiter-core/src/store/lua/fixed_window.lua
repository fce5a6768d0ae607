-- Fixed window, mirroring algorithm/fixed_window.rs in integer microseconds.
-- KEYS[1]  the limiter key; its value is one number, tag × 2^32 + count, where the tag
--          is the window index mod 2^20 (exact in Lua's doubles; the TTL ends the key
--          with its window, long before a tag could come round again)
-- ARGV[1]  now in µs, or "" to use the server's TIME
-- ARGV[2]  the shortest TTL in ms (0 on the server's TIME; more when the caller's clock
--          may run slower than Redis's, so that no key expires before its time)
-- ARGV[3]  cost;  ARGV[4]  window length in µs;  ARGV[5]  limit
-- Windows are aligned to the epoch of the time (Unix time for the server's TIME).
-- Returns reset_after µs × (limit + 1) + remaining when admitted, its negation − 1 when
-- denied (retry-after is the reset): one integer, cheaper for Redis than a table; or,
-- where that product would pass 2^53, {remaining or −remaining − 1, reset_after µs}.
-- A denial never writes; an admission stores the count with a TTL until the window ends.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
end
local min_ttl, cost, window, limit = ARGV[2] + 0, ARGV[3] + 0, ARGV[4] + 0, ARGV[5] + 0
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
  redis.call('SET', KEYS[1], tag * shift + count, 'PX', math.max(math.ceil(reset / 1000), min_ttl))
end
if one then return reset * (limit + 1) + limit - count end
return {limit - count, reset}

-- Fixed window, mirroring algorithm/fixed_window.rs in integer microseconds.
-- KEYS[1]  the limiter key; its value is "<window index>:<count>"
-- ARGV[1]  now in µs, or "" to use the server's TIME
-- ARGV[2]  the shortest TTL in ms (0 on the server's TIME; more when the caller's clock
--          may run slower than Redis's, so that no key expires before its time)
-- ARGV[3]  cost;  ARGV[4]  window length in µs;  ARGV[5]  limit
-- Windows are aligned to the epoch of the time (Unix time for the server's TIME).
-- Returns {allowed, remaining, reset_after µs, retry_after µs}. A denial never writes;
-- an admission stores the count with a TTL until the window ends.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
end
local min_ttl, cost, window, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local index = math.floor(now / window)
local count = 0
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, ':', 1, true)
  if tonumber(string.sub(v, 1, sep - 1)) == index then
    count = tonumber(string.sub(v, sep + 1))
  end
end
local reset = (index + 1) * window - now
if count + cost > limit then
  return {0, limit - count, reset, reset}
end
count = count + cost
if cost > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f:%.0f', index, count), 'PX', math.max(math.ceil(reset / 1000), min_ttl))
end
return {1, limit - count, reset, 0}

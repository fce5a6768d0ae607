-- Bucketed sliding window, mirroring algorithm/bucketed_window/mod.rs in integer
-- microseconds.
-- KEYS[1]  the limiter key. Its value is the text "<newest>:<c0>,<c1>,...,<c(k-1)>":
--          the index of the newest sub-window counted, then the counts by sub-window
--          index mod k.
-- ARGV[1]  cost;  ARGV[2]  sub-window length s in µs;  ARGV[3]  k, sub-windows per
--          window;  ARGV[4]  limit
-- ARGV[5]  now in µs; absent to use the server's TIME. On the caller's time every TTL
--          is at least a minute: TTLs run on Redis's clock, which may run faster than
--          the caller's, and no key may expire before its time
-- Sub-windows are aligned to the epoch of the time (Unix time for the server's TIME).
-- Admits when the counts of the k sub-windows ending with now's plus the cost fit in
-- limit. Returns {remaining, reset_after µs, retry_after µs}, remaining as
-- −remaining − 1 if denied. A denial never writes; an admission stores the counts to
-- expire when its sub-window leaves the window (when every count has left).
local now, min_ttl, unix = ARGV[5], 0, false
if now then
  now, min_ttl = now + 0, 60000
else
  local t = redis.call('TIME')
  now, unix = t[1] * 1000000 + t[2], true
end
local cost, s, k, limit = ARGV[1] + 0, ARGV[2] + 0, ARGV[3] + 0, ARGV[4] + 0
local newest, counts = nil, {}
local v = redis.call('GET', KEYS[1])
if v then
  local i = 0
  for n in string.gmatch(v, '%d+') do
    if newest == nil then newest = tonumber(n) else counts[i] = tonumber(n); i = i + 1 end
  end
  -- Keep the counts in order even if the clock steps back.
  if now < newest * s then now = newest * s end
end
local c = (now - now % s) / s
local function count(j)
  if newest == nil or j < 0 or j > newest or j + k <= newest then return 0 end
  return counts[j % k] or 0
end
local used = 0
for j = c - k + 1, c do used = used + count(j) end
local function reset()
  for j = c, c - k + 1, -1 do
    if count(j) > 0 then return (j + k) * s - now end
  end
  return 0
end
if used + cost > limit then
  -- The first sub-window boundary at which enough has left the window.
  local freed, m = 0, k
  for i = 1, k do
    if c + i >= k then
      freed = freed + count(c + i - k)
      if used - freed + cost <= limit then m = i break end
    end
  end
  return {-(limit - used) - 1, reset(), (c + m) * s - now}
end
if cost == 0 then return {limit - used, reset(), 0} end
local parts = {}
for r = 0, k - 1 do
  -- The sub-window of the window ending at c whose slot is r.
  local j = c - (c - r) % k
  local n = count(j)
  if j == c then n = n + cost end
  parts[r + 1] = string.format('%d', n)
end
local value = string.format('%d', c) .. ':' .. table.concat(parts, ',')
local ends = (c + k) * s
if unix then
  -- On Redis's clock the key expires when the window passes it, rounded up to the
  -- millisecond (PXAT: exact, whatever the script's own run time).
  local at = ends + 999
  redis.call('SET', KEYS[1], value, 'PXAT', string.format('%d', (at - at % 1000) / 1000))
else
  local ms = ends - now + 999
  ms = (ms - ms % 1000) / 1000
  if ms < min_ttl then ms = min_ttl end
  redis.call('SET', KEYS[1], value, 'PX', string.format('%d', ms))
end
return {limit - used - cost, ends - now, 0}

-- Sliding window counter, mirroring algorithm/sliding_window/mod.rs in integer microseconds.
-- KEYS[1]  the limiter key. Its value is one number, (tag × (limit + 1) + current) ×
--          (limit + 1) + previous, where the tag is the window index mod 2^20, while
--          that stays below 2^53 (a limit up to 92681); else the text
--          "<window index>:<current>:<previous>". The TTL ends the key when its counts
--          have faded, long before a tag could come round again.
-- ARGV[1]  cost;  ARGV[2]  window length w in µs;  ARGV[3]  limit
-- ARGV[4]  now in µs; absent to use the server's TIME. On the caller's time every TTL
--          is at least a minute: TTLs run on Redis's clock, which may run faster than
--          the caller's, and no key may expire before its time
-- Admits when previous × (w − elapsed) / w + current + cost ≤ limit, in exact integers.
-- Returns, when admitted, reset_after µs × (limit + 1) + remaining (one integer, cheaper
-- for Redis than a table) while that stays below 2^53; otherwise, and for a denial,
-- {remaining, reset_after µs, retry_after µs}, remaining as −remaining − 1 if denied.
-- A denial never writes; an admission stores the counters with a TTL until the current
-- count has faded: set by the window's first admission, kept (KEEPTTL, cheaper) by the
-- others, as the instant it ends at does not move within a window.
local now, min_ttl = ARGV[4], 0
if now then
  now, min_ttl = now + 0, 60000
else
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
end
local cost, w, limit = ARGV[1] + 0, ARGV[2] + 0, ARGV[3] + 0
local floor = math.floor
-- floor(a × b / c) and the remainder, exact where a × b passes 2^53: a (below 2^33)
-- taken three bits at a time, so every intermediate stays below 2^53 while b and c are
-- below 2^49 (windows up to 17 years in µs).
local function muldiv(a, b, c)
  local q, m = 0, 0
  for shift = 30, 0, -3 do
    m = m * 8 + floor(a / 2 ^ shift) % 8 * b
    local d = floor(m / c)
    if d * c > m then d = d - 1 elseif (d + 1) * c <= m then d = d + 1 end
    q, m = q * 8 + d, m - d * c
  end
  return q, m
end
local index, cur, prev = floor(now / w), 0, 0
local n, cycle = limit + 1, 1048576
local packed = n <= 92682
local stored = index -- the window the counters belong to (a tag when packed)
if packed then stored = index % cycle end
local v = redis.call('GET', KEYS[1])
local since = nil -- windows since the stored one; negative if the clock stepped back
if v and packed then
  v = tonumber(v)
  if v then
    prev = v % n
    v = floor(v / n)
    cur = v % n
    local i = floor(v / n)
    since = (stored - i) % cycle
    if since >= cycle / 2 then since, stored = -1, i end
  end
elseif v then
  local a = string.find(v, ':', 1, true)
  local b = a and string.find(v, ':', a + 1, true)
  if b then
    local i = tonumber(string.sub(v, 1, a - 1))
    cur, prev = tonumber(string.sub(v, a + 1, b - 1)), tonumber(string.sub(v, b + 1))
    since = index - i
    if since < 0 then stored = i end
  end
end
local elapsed = 0
if since == nil then
  cur, prev = 0, 0
elseif since == 1 then
  cur, prev = 0, cur
elseif since > 1 then
  cur, prev = 0, 0
end
-- Same window, or the clock stepped back into an older one: keep the newer counts,
-- as if at the start of their window.
if since == nil or since >= 0 then elapsed = now - index * w end
if elapsed > w - 1 then elapsed = w - 1 end
local left = w - elapsed
-- The previous window's count still weighing, ceil(prev × left / w): exact in integers
-- (prev × left passes 2^53, where doubles stop counting every unit, from a limit of a
-- million a day).
local faded, rest = muldiv(prev, left, w)
if rest > 0 then faded = faded + 1 end
local free = limit - cur - faded -- negative after a clock step back
if cost > free then
  local reset = 0
  if cur > 0 then reset = 2 * w - elapsed elseif prev > 0 then reset = left end
  -- Shortest wait until cost more fits: later in this window as the previous count
  -- fades, else in the next window, where this window's count is the fading one.
  local retry = nil
  if cur + cost <= limit and prev > 0 then
    local a = limit - cur - cost
    local max_left = w -- floor(a × w / prev), capped at w
    if a < prev then max_left = muldiv(a, w, prev) end
    local wait = math.max(left - max_left, 0)
    if wait > 0 and elapsed + wait < w then retry = wait end
  end
  if not retry then
    if cur == 0 then
      retry = left
    else
      local into_next = 0
      if limit - cost < cur then into_next = w - muldiv(limit - cost, w, cur) end
      if into_next < w then retry = left + into_next else retry = left + w end
    end
  end
  return {-math.max(free, 0) - 1, reset, retry}
end
cur = cur + cost
local reset = left
if cur > 0 then reset = 2 * w - elapsed end
if cost > 0 then
  -- Integers formatted as such (cheaper than %.17g).
  local value
  if packed then
    value = string.format('%d', (stored * n + cur) * n + prev)
  else
    value = string.format('%d:%d:%d', stored, cur, prev)
  end
  -- The key holds this window's counts (or a newer window's, after a clock step back):
  -- its TTL already ends when they have faded.
  if since and since <= 0 then
    redis.call('SET', KEYS[1], value, 'KEEPTTL')
  else
    local ms = reset + 999
    ms = (ms - ms % 1000) / 1000
    if ms < min_ttl then ms = min_ttl end
    redis.call('SET', KEYS[1], value, 'PX', string.format('%d', ms))
  end
end
local remaining = free - cost
if (2 * w + 1) * n < 9007199254740992 then return reset * n + remaining end
return {remaining, reset, 0}

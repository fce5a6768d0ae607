-- Sliding log, mirroring algorithm/sliding_log/mod.rs in integer microseconds.
-- KEYS[1]  the limiter key: a sorted set of admissions, scored by their instant in µs.
--          Each member is "<cumulative units admitted, 16 digits>:<cost>", so members are
--          unique, sort in admission order within one instant, and the units in the
--          window are newest.cumulative − oldest.cumulative + oldest.cost: no walk.
--          Cumulative counts are renumbered from the oldest entry before they pass
--          10^15, so they stay exact in Lua's doubles.
-- ARGV[1]  cost;  ARGV[2]  window length in µs;  ARGV[3]  limit
-- ARGV[4]  now in µs; absent to use the server's TIME. On the caller's time every TTL
--          is at least a minute: TTLs run on Redis's clock, which may run faster than
--          the caller's, and no key may expire before its time
-- Returns {allowed, remaining, reset_after µs, retry_after µs}. A denial never writes;
-- an admission adds an entry and sets the TTL to one window (when the newest leaves).
local now, min_ttl = ARGV[4], 0
if now then
  now, min_ttl = now + 0, 60000
else
  local t = redis.call('TIME')
  now = t[1] * 1000000 + t[2]
end
local key = KEYS[1]
local cost, window, limit = ARGV[1] + 0, ARGV[2] + 0, ARGV[3] + 0
local function split(member)
  local s = string.find(member, ':', 1, true)
  return tonumber(string.sub(member, 1, s - 1)), tonumber(string.sub(member, s + 1))
end
local used, last_cum, first_cum, first_cost, newest = 0, 0, 0, 0, nil
local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
if first[1] then
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  -- Keep the log in order even if the clock steps back.
  now = math.max(now, tonumber(last[2]))
  if tonumber(first[2]) + window <= now then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  end
  if first[1] then
    newest = tonumber(last[2])
    last_cum = split(last[1])
    first_cum, first_cost = split(first[1])
    used = last_cum - first_cum + first_cost
  end
end
if used + cost > limit then
  -- The oldest entry whose leaving frees enough: the first whose cumulative count
  -- reaches `need` (binary search over ranks; cumulative counts grow with rank).
  local need = used + cost - limit + first_cum - first_cost
  local lo, hi = 0, redis.call('ZCARD', key) - 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if split(redis.call('ZRANGE', key, mid, mid)[1]) >= need then hi = mid else lo = mid + 1 end
  end
  local at = tonumber(redis.call('ZRANGE', key, lo, lo, 'WITHSCORES')[2])
  return {0, limit - used, newest + window - now, at + window - now}
end
if cost > 0 then
  if last_cum + cost > 1e15 then
    -- Cumulative counts must stay exact in doubles (below 2^53) and 16 digits wide:
    -- renumber from the oldest entry held (once per 10^15 units of a key never idle).
    local base = first_cum - first_cost
    local all = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    redis.call('DEL', key)
    for i = 1, #all, 2 do
      local cum, c = split(all[i])
      redis.call('ZADD', key, all[i + 1], string.format('%016d:%d', cum - base, c))
    end
    last_cum = last_cum - base
  end
  redis.call('ZADD', key, now, string.format('%016d:%d', last_cum + cost, cost))
  redis.call('PEXPIRE', key, math.max(math.ceil(window / 1000), min_ttl))
  used = used + cost
  newest = now
end
local reset = 0
if newest then reset = newest + window - now end
return {1, limit - used, reset, 0}

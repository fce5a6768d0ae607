-- In-flight limit: one key's sorted set of leases (member = request id, score = expiry
-- in ms). Run by the several-limits script as a step (limits/redis_leases.rs).
-- KEYS[1]  the lease set
-- ARGV[1]  limit: requests at once; ARGV[2] lease TTL in ms; ARGV[3] the key's TTL in
--          ms; ARGV[4] this request's member; ARGV[5] now in µs (absent: Redis's TIME)
-- Trims the expired leases; admits when fewer than `limit` remain, adding this
-- request's lease. Returns {1, slots left} or {0, 0}.
local key = KEYS[1]
local limit, ttl, key_ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now
if ARGV[5] then
  now = math.floor(tonumber(ARGV[5]) / 1000)
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
local held = redis.call('ZCARD', key)
if held >= limit then
  return {0, 0}
end
redis.call('ZADD', key, now + ttl, ARGV[4])
if redis.call('PTTL', key) < key_ttl then
  redis.call('PEXPIRE', key, key_ttl)
end
return {1, limit - held - 1}

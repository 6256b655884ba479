-- Admit one request for one client key, atomically (src/keys/limits.rs).
-- KEYS: 1 rpm log (zset: member -> admission ms), 2 tpm log (zset),
--       3 tpm amounts (hash: member -> tokens, `_sum` -> their total),
--       4 leases of requests in flight (zset: member -> lease expiry ms)
-- ARGV: 1 rpm, 2 tpm, 3 estimated tokens, 4 max concurrent (0 = no limit),
--       5 member (unique per request), 6 window ms, 7 lease ms
-- Returns {0, 0} when admitted (everything recorded), else
-- {1 rpm | 2 tpm | 3 concurrency, ms until retrying can succeed}, with
-- nothing recorded: a refused request spends none of the other limits.
-- Time is Redis's own clock, so instances with skewed clocks agree.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm, tpm, est = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local conc, id = tonumber(ARGV[4]), ARGV[5]
local window, lease = tonumber(ARGV[6]), tonumber(ARGV[7])

if conc > 0 then
  -- Leases past their expiry belong to requests whose instance died.
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  if redis.call('ZCARD', KEYS[4]) >= conc then
    return {3, 1000}
  end
end

if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  if redis.call('ZCARD', KEYS[1]) >= rpm then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {1, tonumber(first[2]) + window - now}
  end
end

local sum = 0
if tpm > 0 then
  sum = tonumber(redis.call('HGET', KEYS[3], '_sum') or '0')
  local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - window)
  if #old > 0 then
    for _, m in ipairs(old) do
      sum = sum - tonumber(redis.call('HGET', KEYS[3], m) or '0')
      redis.call('HDEL', KEYS[3], m)
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  end
  if sum < 0 then sum = 0 end
  -- An empty window admits any one request, however large: otherwise a
  -- request bigger than the whole limit could never pass.
  if sum > 0 and sum + est > tpm then
    redis.call('HSET', KEYS[3], '_sum', sum)
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    local wait = 1000
    if first[2] then wait = tonumber(first[2]) + window - now end
    return {2, wait}
  end
end

if rpm > 0 then
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('PEXPIRE', KEYS[1], window)
end
if tpm > 0 then
  redis.call('ZADD', KEYS[2], now, id)
  redis.call('HSET', KEYS[3], id, est, '_sum', sum + est)
  redis.call('PEXPIRE', KEYS[2], window)
  redis.call('PEXPIRE', KEYS[3], window)
end
if conc > 0 then
  redis.call('ZADD', KEYS[4], now + lease, id)
  redis.call('PEXPIRE', KEYS[4], lease)
end
return {0, 0}

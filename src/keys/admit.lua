-- Admit one request for one client key, atomically (src/keys/limits.rs).
-- KEYS: 1 rpm counts, 2 tpm counts (hashes: second -> requests / tokens
--       admitted in that second), 3 leases of requests in flight (zset:
--       member -> lease expiry ms)
-- ARGV: 1 rpm, 2 tpm, 3 estimated tokens, 4 max concurrent (0 = no limit),
--       5 member (unique per request), 6 window seconds, 7 lease ms,
--       8 requests wanted (more than 1 only for a key with an rpm limit
--       alone), 9 instances sharing the key
-- Returns {0, second, granted} when admitted (everything recorded; the
-- second names the bucket to settle; granted requests were counted, the
-- caller keeps the ones beyond the first for its next requests), else
-- {1 rpm | 2 tpm | 3 concurrency, ms until a retry can succeed, 0}, with
-- nothing recorded: a refused request spends none of the other limits.
-- Time is Redis's own clock, so instances with skewed clocks agree. A
-- second's bucket counts while `now_second - bucket <= window`: every
-- request stays counted for at least `window` seconds (at most one more),
-- so no window-long span ever holds more than the limit.
local t = redis.call('TIME')
local sec = tonumber(t[1])
local now = sec * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm, tpm, est = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local conc, id = tonumber(ARGV[4]), ARGV[5]
local window, lease = tonumber(ARGV[6]), tonumber(ARGV[7])
local want, instances = tonumber(ARGV[8]), math.max(1, tonumber(ARGV[9]))

-- The total still counted in a hash of buckets, its oldest counted bucket;
-- buckets that stopped counting are deleted.
local function load(key)
  local flat = redis.call('HGETALL', key)
  local sum, oldest, stale = 0, nil, {}
  for i = 1, #flat, 2 do
    local b, n = tonumber(flat[i]), tonumber(flat[i + 1])
    if sec - b > window then
      stale[#stale + 1] = flat[i]
    else
      sum = sum + n
      if n > 0 and (oldest == nil or b < oldest) then oldest = b end
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  return sum, oldest
end

-- Milliseconds until the oldest counted bucket stops counting.
local function wait(oldest)
  if oldest == nil then return 1000 end
  return (oldest + window + 1) * 1000 - now
end

if conc > 0 then
  -- Leases past their expiry belong to requests whose instance died.
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= conc then
    return {3, 1000, 0}
  end
end

local grant = 1
if rpm > 0 then
  local sum, oldest = load(KEYS[1])
  if sum >= rpm then return {1, wait(oldest), 0} end
  -- Ahead-of-use requests: at most 1/16 of what is left, split between
  -- the instances, so what instances hold unused never starves another
  -- for long; near the limit every request comes here alone.
  if want > 1 and tpm == 0 and conc == 0 then
    grant = math.max(1, math.min(want, math.floor((rpm - sum) / (16 * instances))))
  end
end

if tpm > 0 then
  local sum, oldest = load(KEYS[2])
  -- An empty window admits any one request, however large: otherwise a
  -- request bigger than the whole limit could never pass.
  if sum > 0 and sum + est > tpm then return {2, wait(oldest), 0} end
end

local ttl = (window + 2) * 1000
if rpm > 0 then
  redis.call('HINCRBY', KEYS[1], sec, grant)
  redis.call('PEXPIRE', KEYS[1], ttl)
end
if tpm > 0 then
  redis.call('HINCRBY', KEYS[2], sec, est)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
if conc > 0 then
  redis.call('ZADD', KEYS[3], now + lease, id)
  redis.call('PEXPIRE', KEYS[3], lease)
end
return {0, sec, grant}

-- Settle one admitted request (src/keys/limits.rs).
-- KEYS: 1 rpm counts, 2 tpm counts, 3 leases (as in admit.lua)
-- ARGV: 1 member, 2 token difference (real usage - estimate; negative is a
--       refund), 3 `1` to release the concurrency lease, 4 the bucket
--       (second) the request was admitted in, 5 window seconds, 6 requests
--       granted ahead of use that went unused (given back to the bucket)
-- Counts of a bucket that stopped counting are not touched.
local id, delta = ARGV[1], tonumber(ARGV[2])
local bucket, window = ARGV[4], tonumber(ARGV[5])
if ARGV[3] == '1' then redis.call('ZREM', KEYS[3], id) end
local sec = tonumber(redis.call('TIME')[1])
local unused = tonumber(ARGV[6])
if unused > 0 and sec - tonumber(bucket) <= window
    and redis.call('HEXISTS', KEYS[1], bucket) == 1 then
  if redis.call('HINCRBY', KEYS[1], bucket, -unused) < 0 then
    redis.call('HSET', KEYS[1], bucket, 0)
  end
end
if delta ~= 0 and sec - tonumber(bucket) <= window
    and redis.call('HEXISTS', KEYS[2], bucket) == 1 then
  if redis.call('HINCRBY', KEYS[2], bucket, delta) < 0 then
    redis.call('HSET', KEYS[2], bucket, 0)
  end
end
return 1

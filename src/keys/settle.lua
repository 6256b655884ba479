-- Settle one admitted request (src/keys/limits.rs).
-- KEYS: 1 rpm log, 2 tpm log, 3 tpm amounts, 4 leases (as in admit.lua)
-- ARGV: 1 member, 2 token difference (real usage - estimate; negative is
--       a refund), 3 `1` to release the concurrency lease, 4 `1` to take
--       the request out of the rpm log too (the admission's answer was
--       lost: undo it as if it never happened)
-- A reservation that already left the window is not touched: its tokens
-- no longer count.
local id, delta = ARGV[1], tonumber(ARGV[2])
if ARGV[3] == '1' then redis.call('ZREM', KEYS[4], id) end
if ARGV[4] == '1' then redis.call('ZREM', KEYS[1], id) end
if delta ~= 0 then
  local cur = redis.call('HGET', KEYS[3], id)
  if cur then
    cur = tonumber(cur)
    local new = cur + delta
    if new < 0 then new = 0 end
    local sum = tonumber(redis.call('HGET', KEYS[3], '_sum') or '0') + new - cur
    if sum < 0 then sum = 0 end
    redis.call('HSET', KEYS[3], id, new, '_sum', sum)
  end
end
return 1

-- Publish one key's state, unless the store already holds a newer version (compare-and-set).
-- KEYS: state hash (by token hash), prefix index. ARGV: version, status, limit, ip limit, prefix,
-- token hash, namespace, force. The prefix index remembers which token hash a key was last
-- published under, so a key whose token hash changed leaves no stale record behind.
-- (The old record's name is computed in the script: a single Redis; on a cluster the index and the states
-- live in different slots, and claim_prefix.lua, write_state.lua and retire.lua do this in three steps.)
local version = tonumber(ARGV[1])
if ARGV[8] ~= '1' then
  local known = redis.call('HGET', KEYS[2], 'version')
  if known and tonumber(known) >= version then return 0 end
  known = redis.call('HGET', KEYS[1], 'version')
  if known and tonumber(known) >= version then return 0 end
end
local previous = redis.call('HGET', KEYS[2], 'sha')
if previous and previous ~= ARGV[6] then redis.call('DEL', ARGV[7] .. 'key:' .. previous) end
redis.call('HSET', KEYS[2], 'sha', ARGV[6], 'version', ARGV[1])
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'limit', ARGV[3], 'ip_limit', ARGV[4],
           'version', ARGV[1], 'prefix', ARGV[5])
return 1

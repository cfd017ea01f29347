-- Redis Cluster, publishing step 3 of 3: the key's token hash changed; its old record becomes a tombstone (the
-- version that replaced it, no status: the gate answers unknown_key) that expires by itself.
-- KEYS: the old state hash. ARGV: the new version, force, the tombstone's lifetime in ms.
if ARGV[2] ~= '1' then
  local known = redis.call('HGET', KEYS[1], 'version')
  if known and tonumber(known) >= tonumber(ARGV[1]) then return 0 end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1

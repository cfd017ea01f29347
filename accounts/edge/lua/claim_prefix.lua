-- Redis Cluster, publishing step 1 of 3 (redis_cluster_store.py): claim a key's prefix index for a version.
-- The index lives in the prefix's slot, the state in its token hash's: one script cannot reach both.
-- KEYS: prefix index. ARGV: version, token hash, force ('1' or '0').
-- Returns 0 when the index holds a newer version, or this version of another token hash (the publish stops
-- there); else the token hash the index held before ('' for none), which step 3 retires if it is another one.
-- The same version of the same hash goes on to step 2, whose own compare-and-set decides: the state may have
-- been lost on its master while the index survived on another.
local version = tonumber(ARGV[1])
local previous = redis.call('HGET', KEYS[1], 'sha') or ''
if ARGV[3] ~= '1' then
  local known = tonumber(redis.call('HGET', KEYS[1], 'version'))
  if known and (known > version or (known == version and previous ~= ARGV[2])) then return 0 end
end
redis.call('HSET', KEYS[1], 'sha', ARGV[2], 'version', ARGV[1])
return previous

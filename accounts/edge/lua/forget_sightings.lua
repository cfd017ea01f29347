-- Drop a key from the set of keys seen from web origins once its origins have expired, unless a new origin
-- arrived meanwhile (check.lua adds the key back when it records one). KEYS: the key's origins hash, the set.
-- ARGV: token hash.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
return redis.call('SREM', KEYS[2], ARGV[1])

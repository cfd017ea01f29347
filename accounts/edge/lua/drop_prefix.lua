-- Redis Cluster: drop a prefix index entry after its key's record was removed, unless the index has moved on to
-- another token hash of the same key. KEYS: prefix index. ARGV: token hash.
if redis.call('HGET', KEYS[1], 'sha') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0

-- Redis Cluster, publishing step 2 of 3: write a key's state unless its record holds a newer version (a retired
-- record keeps the version that retired it, so a late copy of an older publish cannot bring it back).
-- KEYS: state hash. ARGV: version, status, limit, ip limit, prefix, force. The buckets (fields used, ts) stay.
if ARGV[6] ~= '1' then
  local known = redis.call('HGET', KEYS[1], 'version')
  if known and tonumber(known) >= tonumber(ARGV[1]) then return 0 end
end
redis.call('PERSIST', KEYS[1])
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'limit', ARGV[3], 'ip_limit', ARGV[4],
           'version', ARGV[1], 'prefix', ARGV[5])
return 1

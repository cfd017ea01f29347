-- Drop a key's record and its prefix index entry, unless the index has moved on to another token hash
-- of the same key. KEYS: state hash. ARGV: namespace, token hash (the index's name comes from the record).
local prefix = redis.call('HGET', KEYS[1], 'prefix')
local removed = redis.call('DEL', KEYS[1])
if prefix then
  local index = ARGV[1] .. 'prefix:' .. prefix
  if redis.call('HGET', index, 'sha') == ARGV[2] then redis.call('DEL', index) end
end
return removed

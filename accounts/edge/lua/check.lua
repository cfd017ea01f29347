-- The gate's decision, and one request taken from both buckets when it passes: one round trip.
-- KEYS: state hash, per-(key, IP) bucket, built mark (all three in one slot on a cluster). ARGV: now in ms,
-- or '' for the server clock; the counting spec
-- "window_ms:retention_ms:top_addresses:origins_per_key:sighting_ttl_ms:namespace" (the store makes it from
-- settings and store.py's constants); and, only for a secret or restricted key presented from a web page, its
-- origin and '1' to refuse it there ('0' to decide as usual).
-- The per-key bucket lives in the state hash itself (fields used, ts), the per-address one in a string
-- "used:ts" that expires once full again: five commands in all. Mirrors ``decide`` and ``bucket_used``
-- in accounts/edge/store.py (the tests run both backends through the same cases), and so does the
-- counting: a rate-limited refusal adds one to the key's count in the window (hash ns..'refusals:'..start,
-- field: token hash) and to its address's (sorted set ns..'refusals:'..start..':'..hash, at most
-- top_addresses of them, Space-Saving); an origin is remembered per key (hash ns..'origins:'..hash, origin ->
-- "first:last:requests", at most origins_per_key) and the key in the set ns..'exposed'.
-- Returns "reason:limit:remaining:retry_after_ms" (one string: an array reply costs the client more to read
-- than the rest of the call); reason 'not_built' when the store lost its data.
local function answer(reason, limit, remaining, wait)
  return string.format('%s:%.0f:%.0f:%.0f', reason, limit, remaining, wait)
end
local state = redis.call('HMGET', KEYS[1], 'status', 'limit', 'ip_limit', 'used', 'ts')
local status = state[1]
if not status then
  if redis.call('EXISTS', KEYS[3]) == 0 then return answer('not_built', 0, 0, 0) end
  return answer('unknown_key', 0, 0, 0)
end
if status == 'suspended' or status == 'revoked' then return answer(status, 0, 0, 0) end
local UNIT = 60000
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Names computed here all start with the key's namespace, which on Redis Cluster carries the key's hash tag:
-- every name this script touches is in the state hash's slot.
local function counting()
  local window, retention, top, origins, ttl, ns = string.match(ARGV[2], '^(%d+):(%d+):(%d+):(%d+):(%d+):(.*)$')
  return {window = tonumber(window), retention = tonumber(retention), top = tonumber(top),
          origins = tonumber(origins), ttl = tonumber(ttl), ns = ns,
          sha = string.sub(KEYS[1], #ns + 5)}  -- KEYS[1] is ns..'key:'..hash
end
if ARGV[3] then
  local spec = counting()
  local ns, sha = spec.ns, spec.sha
  local sightings = ns .. 'origins:' .. sha
  local stamp = string.format('%.0f', now)
  local seen = redis.call('HGET', sightings, ARGV[3])
  if seen then
    local first, requests = string.match(seen, '^(%d+):%d+:(%d+)$')
    requests = string.format('%.0f', tonumber(requests) + 1)
    redis.call('HSET', sightings, ARGV[3], first .. ':' .. stamp .. ':' .. requests)
  elseif redis.call('HLEN', sightings) < spec.origins then
    redis.call('HSET', sightings, ARGV[3], stamp .. ':' .. stamp .. ':1')
    redis.call('SADD', ns .. 'exposed', sha)
  end
  redis.call('PEXPIRE', sightings, spec.ttl)
  if ARGV[4] == '1' then return answer('wrong_key_type', 0, 0, 0) end
end
local limit, ip_limit = tonumber(state[2]), tonumber(state[3])
local function refill(used, ts, lim)
  if not used then return 0, now end
  used = tonumber(used) - math.max(0, now - tonumber(ts)) * lim
  if used < 0 then used = 0 end
  if used > lim * UNIT then used = lim * UNIT end
  return used, math.max(tonumber(ts), now)
end
local key_used, key_ts = refill(state[4], state[5], limit)
local ip_used, ip_ts = 0, now
local ip_state = redis.call('GET', KEYS[2])
if ip_state then
  local used, ts = string.match(ip_state, '^(%d+):(%d+)$')
  ip_used, ip_ts = refill(used, ts, ip_limit)
end
local function wait_of(lim, used)
  if lim <= 0 then return UNIT end
  if used + UNIT > lim * UNIT then return math.ceil((used + UNIT - lim * UNIT) / lim) end
  return 0
end
local key_wait, ip_wait = wait_of(limit, key_used), wait_of(ip_limit, ip_used)
if key_wait > 0 or ip_wait > 0 then
  local spec = counting()
  local sha = spec.sha
  local counts = spec.ns .. 'refusals:' .. string.format('%.0f', math.floor(now / spec.window) * spec.window)
  local first = redis.call('HINCRBY', counts, sha, 1) == 1  -- the key's first refusal in this window
  local top = counts .. ':' .. sha
  local address = string.sub(KEYS[2], #spec.ns + #sha + 5)  -- KEYS[2] is ns..'rl:'..hash..':'..address
  if not redis.call('ZADD', top, 'XX', 'INCR', 1, address) then  -- not counted yet
    local count = 1
    if redis.call('ZCARD', top) >= spec.top then  -- full: the least counted gives its place, and its count
      count = tonumber(redis.call('ZPOPMIN', top)[2]) + 1
    end
    redis.call('ZADD', top, count, address)
  end
  if first then  -- the key's set is new: both live `retention` from now, enough for the window to be read
    redis.call('PEXPIRE', counts, spec.retention)
    redis.call('PEXPIRE', top, spec.retention)
  end
  if ip_wait > key_wait then return answer('rate_limited', ip_limit, 0, ip_wait) end
  return answer('rate_limited', limit, 0, key_wait)
end
key_used, ip_used = key_used + UNIT, ip_used + UNIT
redis.call('HSET', KEYS[1], 'used', string.format('%.0f', key_used), 'ts', string.format('%.0f', key_ts))
redis.call('SET', KEYS[2], string.format('%.0f:%.0f', ip_used, ip_ts), 'PX', math.ceil(ip_used / ip_limit) + 1000)
local reason = 'ok'
if status == 'throttled' then reason = 'throttled' end
local key_left = math.floor((limit * UNIT - key_used) / UNIT)
local ip_left = math.floor((ip_limit * UNIT - ip_used) / UNIT)
if ip_left < key_left then return answer(reason, ip_limit, ip_left, 0) end
return answer(reason, limit, key_left, 0)

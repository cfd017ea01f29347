-- The gate's decision, and one request taken from both buckets when it passes: one round trip.
-- KEYS: state hash, per-(key, IP) bucket, built mark. ARGV: now in ms, or '' for the server clock.
-- The per-key bucket lives in the state hash itself (fields used, ts), the per-address one in a string
-- "used:ts" that expires once full again: five commands in all. Mirrors ``decide`` and ``bucket_used``
-- in accounts/edge/store.py (the tests run both backends through the same cases).
-- Returns {reason, limit, remaining, retry_after_ms}; reason 'not_built' when the store lost its data.
local state = redis.call('HMGET', KEYS[1], 'status', 'limit', 'ip_limit', 'used', 'ts')
local status = state[1]
if not status then
  if redis.call('EXISTS', KEYS[3]) == 0 then return {'not_built', 0, 0, 0} end
  return {'unknown_key', 0, 0, 0}
end
if status == 'suspended' or status == 'revoked' then return {status, 0, 0, 0} end
local UNIT = 60000
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
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
  if ip_wait > key_wait then return {'rate_limited', ip_limit, 0, ip_wait} end
  return {'rate_limited', limit, 0, key_wait}
end
key_used, ip_used = key_used + UNIT, ip_used + UNIT
redis.call('HSET', KEYS[1], 'used', string.format('%.0f', key_used), 'ts', string.format('%.0f', key_ts))
redis.call('SET', KEYS[2], string.format('%.0f:%.0f', ip_used, ip_ts), 'PX', math.ceil(ip_used / ip_limit) + 1000)
local reason = 'ok'
if status == 'throttled' then reason = 'throttled' end
local key_left = math.floor((limit * UNIT - key_used) / UNIT)
local ip_left = math.floor((ip_limit * UNIT - ip_used) / UNIT)
if ip_left < key_left then return {reason, ip_limit, ip_left, 0} end
return {reason, limit, key_left, 0}

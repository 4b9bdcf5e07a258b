"""The Lua scripts of the lease protocol and the fenced commit (see ``_leases.py``).

Each script is one atomic step on the Redis server.  Every script takes the
time as an argument (``now_ms``), never Redis ``TIME``, so a test drives a
virtual clock against a real server.  Each touches only keys with one hash tag
(``{T:p}``), so it is valid in Redis Cluster; the shebang (Redis 7) makes Redis
refuse a script that writes before it starts when it is out of memory, rather
than after part of its writes.
"""

from __future__ import annotations

__all__ = ["ACQUIRE", "COMMIT", "HEARTBEAT", "RELEASE", "RENEW"]

ACQUIRE = """#!lua
-- KEYS: lease, token counter.  ARGV: worker, now_ms, lease_ms.
-- A free, expired or own (a restarted worker of the same name) lease is taken
-- with a new fencing token; a live lease of another worker is not.
local held = redis.call('HMGET', KEYS[1], 'worker', 'expires_ms')
if held[2] and tonumber(held[2]) > tonumber(ARGV[2]) and held[1] ~= ARGV[1] then
  return false
end
local token = redis.call('INCR', KEYS[2])
local expires = tonumber(ARGV[2]) + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'worker', ARGV[1], 'token', token, 'expires_ms', expires)
return {token, expires}
"""

RENEW = """#!lua
-- KEYS: lease.  ARGV: worker, token, now_ms, lease_ms.
-- Extends the lease if it is still this worker's with this token (an expired
-- lease nobody took since is still its owner's: the token has not moved).
local held = redis.call('HMGET', KEYS[1], 'worker', 'token')
if held[1] ~= ARGV[1] or held[2] ~= ARGV[2] then
  return false
end
local expires = tonumber(ARGV[3]) + tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'expires_ms', expires)
return expires
"""

RELEASE = """#!lua
-- KEYS: lease.  ARGV: worker, token.  Deletes the lease if still this one.
local held = redis.call('HMGET', KEYS[1], 'worker', 'token')
if held[1] ~= ARGV[1] or held[2] ~= ARGV[2] then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
"""

HEARTBEAT = """#!lua
-- KEYS: members.  ARGV: worker, now_ms, lease_ms.
-- Announces the worker until now + lease_ms, drops expired members, returns
-- the live ones.
local now = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], now + tonumber(ARGV[3]))
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) > now then
    live[#live + 1] = all[i]
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return live
"""

COMMIT = """#!lua
-- KEYS: lease, token counter, state[, output stream].
-- ARGV: token, commit id, position, state, done, entry count, then per entry its
-- field count and its fields and values.
-- A commit whose id the state already holds with this token went through
-- before (this is its retry: its reply was lost): 1, nothing written again.
-- Refused (0, nothing written) unless the fencing counter and the lease both
-- still carry this token; else XADD every entry, write the state, return 1.
local kind = redis.call('TYPE', KEYS[3])['ok']
if kind ~= 'hash' and kind ~= 'none' then
  return redis.error_reply('state key ' .. KEYS[3] .. ' is a ' .. kind .. ', not a hash')
end
local stored = redis.call('HMGET', KEYS[3], 'token', 'commit')
if stored[1] == ARGV[1] and stored[2] == ARGV[2] then
  return 1
end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then
  return 0
end
local count = tonumber(ARGV[6])
if count > 0 then
  local out = redis.call('TYPE', KEYS[4])['ok']
  if out ~= 'stream' and out ~= 'none' then
    return redis.error_reply('output key ' .. KEYS[4] .. ' is a ' .. out .. ', not a stream')
  end
end
local i = 7
for _ = 1, count do
  local n = tonumber(ARGV[i])
  redis.call('XADD', KEYS[4], '*', unpack(ARGV, i + 1, i + 2 * n))
  i = i + 1 + 2 * n
end
redis.call('HSET', KEYS[3], 'token', ARGV[1], 'commit', ARGV[2], 'position', ARGV[3],
  'state', ARGV[4], 'done', ARGV[5])
return 1
"""

package redismeter

import "github.com/redis/go-redis/v9"

// The Lua scripts below read the time with the Redis TIME command, so that
// every process measures leases and pauses on the same clock, the server's.

// pauseScript keeps the longer of the pause in force on KEYS[1] and one of
// ARGV[1] milliseconds.
var pauseScript = redis.NewScript(`
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
end
return 0
`)

// acquireScript takes a slot of the sorted set KEYS[1], whose members are
// holder ids scored by the end of their lease in milliseconds. It first
// drops expired leases, and the expired records of KEYS[3] (see
// releaseScript). It refuses a holder recorded there as given back: the
// call reached Redis after the give-back of the slot it was to take (the
// network or Redis held it back), and its caller, if any, had given up
// on it. It refuses while the pause key KEYS[2] lives.
// ARGV: the limit, the lease in milliseconds, the new holder's id.
// It returns {granted, wait in milliseconds, paused}: the wait is the time
// until the earliest lease ends, or the rest of the pause (0 for a holder
// given back). A holder whose slot the set holds already is granted it
// again, with its lease renewed: the call was sent again (go-redis
// retries a call whose connection broke), and its first run took the
// slot; or an Acquire asks again under the same holder (see holder), and
// a late try of its refused call took the slot.
var acquireScript = redis.NewScript(`
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZSCORE', KEYS[3], ARGV[3]) then
  return {0, 0, 0}
end
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  local paused = redis.call('PTTL', KEYS[2])
  if paused > 0 then
    return {0, paused, 1}
  end
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, tonumber(first[2]) - now, 0}
  end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return {1, 0, 0}
`)

// renewScript sets to now + ARGV[1] milliseconds the leases of the holder
// ids ARGV[2..] in the sorted set KEYS[1], adding back those it lacks (the
// set was lost, or their leases ended and were dropped), and returns how
// many it added back. With those, the set may hold more ids than the
// limit for a while: the acquire script grants nothing until it holds
// fewer. A lease that ended but was not dropped yet is renewed too: no
// process has counted its slot as free. An id that KEYS[2] records as
// given back is left out: the renewal reached Redis after the give-back.
var renewScript = redis.NewScript(`
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ends = now + tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local added = 0
for i = 2, #ARGV do
  if not redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    added = added + redis.call('ZADD', KEYS[1], ends, ARGV[i])
  end
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIREAT', KEYS[1], last[2])
end
return added
`)

// releaseScript gives back the slots of holder ids in the sorted set
// KEYS[1], and records each id as given back in the sorted set KEYS[3]
// (the gone record, "slots:{key}:gone"), scored by the time in
// milliseconds after which the record may be dropped: the acquire and
// renew scripts refuse to give a recorded id a slot again, however late
// Redis runs them. A holder recorded already keeps the longer of its two
// records. The key KEYS[3] expires with its last record. When
// ARGV[1] is positive, it also pauses KEYS[2] for that many milliseconds
// unless a longer pause is in force. ARGV[2..] are pairs of a holder id
// and how long its record lives, in milliseconds.
var releaseScript = redis.NewScript(`
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
for i = 2, #ARGV, 2 do
  redis.call('ZREM', KEYS[1], ARGV[i])
  local ends = now + tonumber(ARGV[i + 1])
  local before = redis.call('ZSCORE', KEYS[3], ARGV[i])
  if not before or tonumber(before) < ends then
    redis.call('ZADD', KEYS[3], ends, ARGV[i])
  end
end
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIREAT', KEYS[3], last[2])
end
local ms = tonumber(ARGV[1])
if ms > 0 and redis.call('PTTL', KEYS[2]) < ms then
  redis.call('SET', KEYS[2], '1', 'PX', ms)
end
return 0
`)

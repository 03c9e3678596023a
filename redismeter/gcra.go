package redismeter

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/trimeter-go/trimeter/internal/tokengap"
)

// gcraScript keeps a token bucket as a theoretical arrival time (the
// generic cell rate algorithm, GCRA): the bucket is full from that time
// on, and before it lacks (tat-now)/interval tokens. It takes one token
// from the bucket KEYS[1] unless the pause key KEYS[2] lives.
//
// ARGV is the interval between tokens and the burst offset, burst·interval,
// each as whole seconds and nanoseconds within the second. It returns
// {granted, wait seconds, wait nanoseconds, pause milliseconds}: the wait
// until the next token is due when it refused, or what is left of the
// pause in force, when it found one (then it takes nothing).
//
// Lua numbers are doubles, exact for integers up to 2^53, so every time is
// kept as a pair of integers, whole seconds and nanoseconds below 10^9,
// added and subtracted with a carry: the arithmetic is exact. Time is the
// Redis server's (TIME, to the microsecond), counted from 2017-01-01 UTC.
//
// A token is granted when max(tat, now) + interval - now <= burst·interval,
// and moves tat on to max(tat, now) + interval. So after a grant at g,
// tat >= g + interval, and k-1 more grants up to g' need
// g + k·interval - g' <= burst·interval: k <= burst + (g'-g)/interval,
// and interval >= 1/rate.
//
// The new tat is stored as seconds with nine decimals,
// "312428856.000000000", with an expiry at that time rounded up to the
// millisecond, so that the key outlives the debt. The library
// github.com/go-redis/redis_rate stores the same seconds since 2017 as a
// floating-point number, which Redis writes as a decimal
// ("312428856.78265297", up to 7.0) or in exponent form
// ("3.1242885678265297e+08", from 7.2): the script reads both, so
// processes using redis_rate and processes using this meter can share a
// bucket (the former with their floating-point rounding).
var gcraScript = redis.NewScript(`
redis.replicate_commands()
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then
  return {0, 0, 0, paused}
end
local e9 = 1000000000
local epoch = 1483228800
local t = redis.call('TIME')
local now_s, now_ns = tonumber(t[1]) - epoch, tonumber(t[2]) * 1000
local tat_s, tat_ns = now_s, now_ns
local stored = redis.call('GET', KEYS[1])
if stored then
  local s, frac = string.match(stored, '^(%d+)%.?(%d*)$')
  if s and #frac <= 9 then
    s, frac = tonumber(s), tonumber(frac .. string.rep('0', 9 - #frac))
  else
    -- Another form of a number of seconds: a float that Redis wrote
    -- for redis_rate in exponent form (7.2 and later do), say.
    local x = tonumber(stored)
    if not x or x < 0 or x >= 1e15 then
      return redis.error_reply('rate bucket ' .. KEYS[1] .. ' holds no arrival time: ' .. stored)
    end
    s = math.floor(x)
    frac = math.floor((x - s) * e9)
  end
  if s > tat_s or (s == tat_s and frac > tat_ns) then
    tat_s, tat_ns = s, frac
  end
end
local new_s, new_ns = tat_s + tonumber(ARGV[1]), tat_ns + tonumber(ARGV[2])
if new_ns >= e9 then
  new_s, new_ns = new_s + 1, new_ns - e9
end
local debt_s, debt_ns = new_s - now_s, new_ns - now_ns
if debt_ns < 0 then
  debt_s, debt_ns = debt_s - 1, debt_ns + e9
end
local wait_s, wait_ns = debt_s - tonumber(ARGV[3]), debt_ns - tonumber(ARGV[4])
if wait_ns < 0 then
  wait_s, wait_ns = wait_s - 1, wait_ns + e9
end
if wait_s > 0 or (wait_s == 0 and wait_ns > 0) then
  return {0, wait_s, wait_ns, 0}
end
redis.call('SET', KEYS[1], string.format('%d.%09d', new_s, new_ns))
redis.call('PEXPIREAT', KEYS[1], (new_s + epoch) * 1000 + math.ceil(new_ns / 1000000))
return {1, 0, 0, 0}
`)

// maxOffset caps a bucket's burst offset, so that burst·interval fits an
// int64 and the script's times and expiries stay small: a burst that
// would take longer to refill, about 36 years, counts as the tokens of 36
// years (at least one).
const maxOffset = 1 << 60 // nanoseconds

// A gcra is a bucket's limit as gcraScript takes it.
type gcra struct {
	interval time.Duration // between tokens, at least a nanosecond
	offset   time.Duration // burst·interval, at most max(maxOffset, interval)
}

// newGCRA returns the limit of perSecond tokens per second, which must be
// positive and give an interval below math.MaxInt64 nanoseconds (see
// checkRate), and a burst of burst tokens. The interval is rounded up to a
// whole nanosecond, so a rate above 10^9 per second counts as 10^9.
func newGCRA(perSecond float64, burst int) gcra {
	iv := max(1, int64(tokengap.Of(perSecond)))
	n := min(int64(max(burst, 1)), max(1, maxOffset/iv))
	return gcra{interval: time.Duration(iv), offset: time.Duration(n * iv)}
}

// A verdict is gcraScript's answer.
type verdict struct {
	granted bool
	wait    time.Duration // until the next token is due, when not granted
	pause   time.Duration // what is left of the pause in force, if any
}

// take runs gcraScript once on the bucket key and its pause key. An error
// is the client's (a failed or timed-out call) or the script's (a key
// that holds something else).
func (g gcra) take(ctx context.Context, c redis.Scripter, bucket, pauseKey string) (verdict, error) {
	ivS, ivNs := split(g.interval)
	offS, offNs := split(g.offset)
	r, err := gcraScript.Run(ctx, c, []string{bucket, pauseKey}, ivS, ivNs, offS, offNs).Int64Slice()
	if err != nil {
		return verdict{}, err
	}
	if len(r) != 4 {
		return verdict{}, fmt.Errorf("rate script replied %v, want 4 numbers", r)
	}
	return verdict{
		granted: r[0] == 1,
		wait:    duration(r[1], r[2]),
		pause:   satMul(r[3], int64(time.Millisecond)),
	}, nil
}

// split returns d as whole seconds and the nanoseconds left, as the script
// takes them.
func split(d time.Duration) (string, string) {
	return strconv.FormatInt(int64(d/time.Second), 10), strconv.FormatInt(int64(d%time.Second), 10)
}

// duration joins seconds and nanoseconds into a Duration, the longest
// there is when they do not fit.
func duration(s, ns int64) time.Duration {
	if s > (math.MaxInt64-ns)/int64(time.Second) {
		return math.MaxInt64
	}
	return time.Duration(s*int64(time.Second) + ns)
}

// satMul returns n·unit as a Duration, the longest there is when it does
// not fit; n and unit are not negative.
func satMul(n, unit int64) time.Duration {
	if n > math.MaxInt64/unit {
		return math.MaxInt64
	}
	return time.Duration(n * unit)
}

package redismeter

import (
	"context"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/trimeter-go/trimeter/internal/tokengap"
	"github.com/trimeter-go/trimeter/throttle"
)

// rateCallers is how many of a Rate's callers in one process may ask Redis
// for a token at once; the others wait their turn in the process.
const rateCallers = 4

// minRetry is the shortest wait a Rate reports, so that waits shorter than
// a Redis round trip do not turn into a busy loop of calls.
const minRetry = 100 * time.Microsecond

// Rate is a token bucket shared through Redis by every process that uses
// the same key: in any window of length t of the Redis server's clock, at
// most burst + perSecond·t tasks start, summed over all of them. The
// bucket is kept by a GCRA Lua script under the Redis key "rate:{key}" and
// timed by the Redis server's clock; a pause is kept under
// "rate:{key}:pause". Build one with [NewRate]; it is safe for concurrent
// use, and costs one Redis round trip per start.
//
// The script's arithmetic is exact: it keeps its times in Redis as whole
// seconds and nanoseconds, and charges each start one interval of
// ⌈10⁹/perSecond⌉ nanoseconds, so rounding can only slow the bucket down.
// Processes are not served in turn: each asks again when Redis says the
// next token is due, and whoever asks first gets it. A permit done
// [throttle.Unused] does not give its token back (the bucket keeps no
// record of its grants, and a whole token given back after the bucket was
// full could let one start too many through).
//
// A token Redis granted to a call whose reply the caller never got (ctx
// ended during the call, the call timed out, its connection broke) is
// spent: the caller gets the error, and the bucket has one token less,
// which errs on the safe side. So is each run of a call that go-redis
// sends again after its connection broke (its MaxRetries), of which the
// caller gets one answer. A permit's Done makes no Redis call unless it
// carries a pause.
//
// The bound holds while Redis keeps the bucket. A bucket that Redis loses
// (a restart without persistence, a flush, a failover to a replica that
// had not got it yet) starts again full: one more burst may start in the
// window that spans the loss.
//
// A Rate implements [throttle.Meter], [throttle.Trier], [throttle.Keyed],
// [throttle.Checker] and [throttle.Watcher].
type Rate struct {
	base
	key       string
	perSecond float64
	burst     int
	limit     gcra
	err       error
	root      bool // not made by ForKey: records pauses in the Stats
	gate      gate
	turn      turnstile
	fallback  throttle.Meter // nil under the fail policy
}

// NewRate returns a meter that lets tasks start at most perSecond times
// per second, with a bucket of burst tokens, across every process that
// uses key on the same Redis. Fractional rates work: 0.2 is one start
// every five seconds. The interval between starts is rounded up to a
// whole nanosecond, so a rate r runs at 10⁹/⌈10⁹/r⌉ per second: a rate
// above 10⁹ per second counts as 10⁹. A burst that would take longer than
// about 36 years to refill counts as the tokens of 36 years.
//
// A bad value (a nil client, an empty key, perSecond not positive and
// finite or too small for a time.Duration, burst below 1, a bad option)
// does not panic: Err reports it, naming the value, and every Acquire
// returns it. See [FallbackShare] for what happens when Redis fails.
func NewRate(client redis.UniversalClient, key string, perSecond float64, burst int, opts ...Option) *Rate {
	cfg := newConfig(opts)
	cfg.fail(checkRate(key, perSecond, burst))
	r := newRate(newBase(client, cfg), key, perSecond, burst)
	r.root = true
	return r
}

func checkRate(key string, perSecond float64, burst int) error {
	switch {
	case key == "":
		return badValue("NewRate: key is empty")
	case !(perSecond > 0) || math.IsInf(perSecond, 0):
		return badValue("NewRate(perSecond %v): must be positive and finite", perSecond)
	case !(tokengap.Of(perSecond) < math.MaxInt64):
		return badValue("NewRate(perSecond %v): too small, one start would take longer than %v", perSecond, time.Duration(math.MaxInt64))
	case burst < 1:
		return badValue("NewRate(burst %d): must be at least 1", burst)
	}
	return nil
}

func newRate(b base, key string, perSecond float64, burst int) *Rate {
	r := &Rate{base: b, key: key, perSecond: perSecond, burst: burst, err: b.cfg.err, turn: make(turnstile, rateCallers)}
	if r.err != nil {
		return r
	}
	r.limit = newGCRA(perSecond, burst)
	if share := b.cfg.share; share > 0 {
		r.fallback, r.err = localRate(perSecond*share, scaled(burst, share), b.cfg.clock)
	}
	return r
}

// Err returns the error that names the bad value the meter was built with,
// or nil.
func (r *Rate) Err() error { return r.err }

// Stats returns the meter's counts in this process, for the meter and
// every meter its ForKey returned. A permit done Unused counts as started
// and finished, since its token is spent. PausedUntil is the end of the
// latest pause this process set or learned of on the meter's own key.
func (r *Rate) Stats() throttle.Stats { return r.mon.Stats() }

// ForKey returns a Rate with the same limit and options on the key
// key + ":" + k, for trimeter.PerKey. Its counts add to r's Stats. Under
// [FallbackShare] each meter ForKey returns keeps its own local meter.
func (r *Rate) ForKey(k string) throttle.Meter {
	return newRate(r.base, r.key+":"+k, r.perSecond, r.burst)
}

// Acquire waits until a task may start and returns its permit. While the
// bucket is empty it sleeps for as long as Redis says the next token needs,
// then asks again; at most a few callers of one process ask Redis at once,
// and the others wait their turn. When ctx ends first it returns ctx's
// error at once, or, if a Redis call is in flight, when the call ends: at
// ctx's deadline, or at the call timeout for a ctx cancelled without one
// (see the package documentation). When Redis fails it returns an error
// that wraps [ErrUnavailable], or falls back (see [FallbackShare]). A meter
// built with a bad value returns that error, and a nil ctx an error that
// wraps throttle.ErrBadValue.
func (r *Rate) Acquire(ctx context.Context) (throttle.Permit, error) {
	if r.err != nil {
		return nil, r.err
	}
	if ctx == nil {
		return nil, errNilContext
	}
	r.mon.Wait(1)
	defer r.mon.Wait(-1)
	if err := r.turn.enter(ctx); err != nil {
		return nil, err
	}
	defer r.turn.leave()
	for {
		p, wait, err := r.TryAcquire(ctx)
		if p != nil || err != nil {
			return p, err
		}
		if wait <= 0 && r.fallback != nil {
			return acquireLocal(ctx, &r.base, r.fallback, r.hold)
		}
		if err := sleep(ctx, r.cfg.clock, max(wait, minRetry), nil, nil); err != nil {
			return nil, err
		}
	}
}

// TryAcquire asks Redis for a token once (one round trip) and returns a
// permit when it got one. Otherwise it returns how long to wait: until the
// next token is due, or until a pause ends (a paused key takes no token);
// under [FallbackShare], until the local meter's next token is due or it
// is time to ask Redis again, whichever comes first. While that wait lasts
// it answers without asking Redis again. Errors are as for Acquire.
func (r *Rate) TryAcquire(ctx context.Context) (throttle.Permit, time.Duration, error) {
	if r.err != nil {
		return nil, 0, r.err
	}
	if ctx == nil {
		return nil, 0, errNilContext
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	now := r.cfg.clock.Now()
	if d := r.gate.wait(now); d > 0 {
		return nil, d, nil
	}
	if r.local() {
		return tryLocal(ctx, &r.base, r.fallback, r.hold)
	}
	v, err := r.allow(ctx)
	if err != nil {
		if err := r.failed(ctx, "rate", r.key, err); err != nil {
			return nil, 0, err
		}
		return tryLocal(ctx, &r.base, r.fallback, r.hold)
	}
	if v.pause > 0 {
		r.hold(v.pause)
		return nil, v.pause, nil
	}
	if !v.granted {
		wait := max(v.wait, minRetry)
		r.gate.hold(now.Add(wait))
		return nil, wait, nil
	}
	if err := ended(ctx); err != nil {
		// ctx ended while the call was in flight: the caller has its
		// error, and the token is lost (see ratePermit.Done).
		return nil, 0, err
	}
	r.mon.Start(false)
	return &ratePermit{r: r}, 0, nil
}

// allow asks Redis for a token once, within the call timeout. Redis
// refuses it while the key is paused, and then takes none.
func (r *Rate) allow(ctx context.Context) (v verdict, err error) {
	err = r.call(ctx, func(ctx context.Context) (err error) {
		v, err = r.limit.take(ctx, r.client, r.bucketKey(), r.pauseKey())
		return err
	})
	return v, err
}

// bucketKey is the Redis key of the bucket, "rate:{key}". The braces make
// it a Redis Cluster hash tag, the same as the pause key's.
func (r *Rate) bucketKey() string { return "rate:{" + hashTag(r.key) + "}" }

func (r *Rate) pauseKey() string { return "rate:{" + hashTag(r.key) + "}:pause" }

// hold keeps this process from asking Redis until a pause of d ends.
func (r *Rate) hold(d time.Duration) {
	until := r.pauseUntil(d)
	r.gate.hold(until)
	if r.root {
		r.mon.SetPause(until)
	}
}

// pause stores a pause of d in Redis, for every process, and keeps it
// locally too.
func (r *Rate) pause(d time.Duration) {
	r.hold(d)
	_ = r.detached(func(ctx context.Context) error {
		return pauseScript.Run(ctx, r.client, []string{r.pauseKey()}, millis(d)).Err()
	})
}

// ratePermit is a token taken from Redis.
type ratePermit struct {
	r    *Rate
	once once
}

// Done pauses the key for o.Pause, in Redis for every process and in
// this process at once. A permit done [throttle.Unused] does not give its
// token back: the bucket keeps no record of its grants, and a whole token
// given back after the bucket was full could let one start too many
// through. The token is lost, which errs on the safe side. Without a
// pause Done makes no Redis call; with one it waits for the call, at most
// the call timeout, and a failed call is ignored: the pause still holds in
// this process.
func (p *ratePermit) Done(o throttle.Outcome) {
	if !p.once.first() {
		return
	}
	if o.Pause > 0 {
		p.r.pause(o.Pause)
	}
	p.r.finish(o)
}

// millis rounds d up to whole milliseconds, at least one, and at most the
// milliseconds of the longest Duration, so that every time Redis reports
// back in milliseconds converts to a Duration. (Not (d+999µs)/1ms, which
// overflows for d near math.MaxInt64 and made a lease or a pause "for
// good" last a millisecond.)
func millis(d time.Duration) int64 {
	ms := d / time.Millisecond
	if d%time.Millisecond > 0 && ms < math.MaxInt64/time.Millisecond {
		ms++
	}
	return max(1, int64(ms))
}

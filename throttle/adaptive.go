package throttle

import (
	"context"
	"time"
)

// An Adaptive is a concurrency limit that finds its own value between a
// minimum and a maximum, from how the attempts it admits end: it starts at
// the minimum, rises while latency stays near the best seen, falls when
// latency shows a queue at the service, and is cut when the service
// pushes back (Outcome.Status [PushedBack], which a trimeter.Pushback
// error reports) or attempts fail. The algorithm follows TCP Vegas (L. S.
// Brakmo and L. L. Peterson, "TCP Vegas: End to End Congestion Avoidance
// on a Global Internet", IEEE JSAC 13(8), 1995), as Netflix's
// concurrency-limits library applies it to requests
// (https://github.com/Netflix/concurrency-limits): see the details below.
//
// Otherwise it behaves as a [Concurrency] whose limit moves by itself:
// waiters are served first come, first served; a cancelled context ends a
// wait at once; a lower limit cancels nothing; a positive Outcome.Pause
// holds off every start for that long. Stats().Limit shows the current
// limit.
//
// # Learning
//
// With a limit of L, a latency lat against the best latency seen, base
// (both smoothed over some sixteen attempts), means that about
// q = L·(1 − base/lat) attempts wait in a queue at the service. The limit
// grows while q < 1 + L/16 and shrinks while q is above twice that, by one
// per round trip; at first it grows by one per finished attempt (doubling
// each round trip) until a queue shows or a push-back comes: a failure,
// which shows no queue, does not end that first phase. A push-back
// halves the limit and a failure takes a tenth off, once for all the
// attempts admitted before that cut: a push-back's halving answers the
// failures and push-backs of those attempts, a failure's tenth only their
// failures, so that a push-back still halves after it. Attempts that
// ended [Canceled] or [Unused] teach nothing, and latencies of attempts
// that ran while fewer than L/2 were in flight (at most, from the
// attempt's start to its end) only update the latency estimates, not the
// limit. After a push-back cut, base is measured afresh. A success whose
// Outcome.Latency is zero or less teaches nothing either: on a fake clock
// that stands still while attempts run, the limit never rises from the
// minimum.
//
// Measured against a simulated service of capacity C = 32 (2ms per
// request; beyond C at once requests queue; with 2C in the system they
// are pushed back) driven by a closed loop of 128 callers on a 2-core
// machine (BenchmarkAdaptive): from a limit of 1 the limit enters ±25% of
// C within 10–20ms and stays there (at 33–36); it serves 96–101% of the
// requests a fixed Concurrency(32) serves; and when C halves it follows to
// 17–19 within 5ms, as the callers then find 2C in the system and are
// pushed back.
type Adaptive struct {
	core
	s     slots
	v     vegas
	peaks peaks
	cutAt uint64 // the grants made until the last cut, of either kind
	// halvedAt is the grants made until the last push-back's cut: a
	// failure's smaller cut does not answer the push-backs of the attempts
	// admitted before it.
	halvedAt uint64
}

// NewAdaptive returns an Adaptive whose limit starts at min and stays
// between min and max.
//
// A bad value (min below 1, max below min, or a bad option) does not
// panic: Err, and every Acquire and TryAcquire, return an error that wraps
// [ErrBadValue] and names the values, and the meter stays unusable: its
// Stats stay zero.
func NewAdaptive(min, max int, opts ...Option) *Adaptive {
	a := &Adaptive{v: newVegas(min, max), s: slots{limit: min}}
	var err error
	switch {
	case min < 1:
		err = badValue("NewAdaptive(%d, %d): min must be at least 1", min, max)
	case max < min:
		err = badValue("NewAdaptive(%d, %d): max must be at least min", min, max)
	}
	a.init(buildOptions(opts), a, err)
	a.mon.SetLimit(int64(min))
	return a
}

func (a *Adaptive) delay(now int64, k int) int64 { return a.s.delay(now, k) }

func (a *Adaptive) slack() int64 { return a.s.slack() }

func (a *Adaptive) take(now int64) uint64 {
	a.s.take(now)
	return a.peaks.granted(a.s.inFlight)
}

// Acquire waits for a free slot under the current limit and returns its
// permit. It blocks while the limit's worth of attempts run, while a
// push-back pause is in force, and while earlier callers wait. It returns
// ctx.Err() when ctx ends first (at once when ctx has already ended),
// taking no slot, and the meter's error when the meter was built with a
// bad value.
//
// The permit's Done frees the slot and teaches the meter from the
// outcome's status and latency. Call Done exactly once.
func (a *Adaptive) Acquire(ctx context.Context) (Permit, error) {
	grant, err := a.acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &adaptivePermit{a: a, grant: grant}, nil
}

// TryAcquire takes a slot when one is free for this caller now (after
// every waiting Acquire has had its own) and no pause is in force.
// Otherwise it returns a nil permit and how long to wait: the rest of the
// pause when one is in force (full or not), else 0 when the meter is
// full, meaning until a permit is done.
// Errors are as for Acquire; it never blocks.
func (a *Adaptive) TryAcquire(ctx context.Context) (Permit, time.Duration, error) {
	grant, ok, wait, err := a.try(ctx)
	if !ok {
		return nil, wait, err
	}
	return &adaptivePermit{a: a, grant: grant}, 0, nil
}

// Err returns the error of a meter built with a bad value, or of a zero
// value (one not made by its New function), or nil.
func (a *Adaptive) Err() error { return a.fault() }

// Stats returns what the meter has done: Limit is the current limit,
// InFlight the permits not yet Done, Waiting the callers blocked in
// Acquire, and PausedUntil the end of the pause in force.
func (a *Adaptive) Stats() Stats { return a.stats() }

type adaptivePermit struct {
	a     *Adaptive
	grant uint64 // its number, from peaks
}

func (p *adaptivePermit) Done(o Outcome) {
	a := p.a
	a.mu.Lock()
	defer a.mu.Unlock() // deferred: the pause reads the clock, which may panic
	fresh := p.grant > a.cutAt
	if o.Status == PushedBack {
		fresh = p.grant > a.halvedAt
	}
	if a.v.learn(o, fresh, a.peaks.since(p.grant)) {
		a.cutAt = a.peaks.n
		if o.Status == PushedBack {
			a.halvedAt = a.peaks.n
		}
	}
	a.s.inFlight--
	a.s.limit = a.v.current()
	a.mon.SetLimit(int64(a.s.limit))
	a.poke()
	a.finished(o.Status) // under mu, as the start was: a slot freed here and taken again never counts twice in InFlight
	if o.Pause > 0 {
		a.pauseFor(a.now(), o.Pause) // last: the slot is free whatever the clock does
	}
}

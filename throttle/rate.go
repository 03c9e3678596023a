package throttle

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/trimeter-go/trimeter/internal/changes"
	"github.com/trimeter-go/trimeter/internal/ownrate"
)

// A Rate is a token bucket shared by every call that uses it: tasks start
// at most perSecond times per second on average, and up to burst at the
// same instant after a quiet spell. The bound is exact: in any window of
// length t, measured on the meter's clock at the moments permits are
// granted, at most burst + perSecond·t permits are granted (not counting
// those given back unused). The bucket starts full.
//
// Acquire waits in line: waiters are served first come, first served, and
// a newcomer never overtakes them. Only the first waiter watches the
// clock; the others sleep until their turn, so a crowd of waiters costs no
// more than one. A cancelled context ends a wait at once and takes
// nothing.
//
// # Precision
//
// An exact bucket of burst 1 loses every nanosecond by which a grant comes
// late (the next token counts from the grant), and Go's timers wake late:
// on Linux the runtime sleeps in whole milliseconds, so a timer fires
// 0.1–1.1ms after its time. (x/time/rate's Wait instead lets late starts
// bunch up, beyond the bound by up to as many starts as there are
// waiters, and still reaches only 18% of 10,000 starts per second from one
// caller.)
//
// So, on the real clock, when the bucket's spare tokens cannot make up for
// a late timer ((burst−1)/perSecond shorter than the timer's learned
// lateness, some 1.5ms), the first waiter waits precisely: on a timer
// until a learned margin before its token is due, then on Linux in
// nanosleep(2), which wakes some 70µs late, and it spins for the rest,
// yielding the processor while more than 20µs remain. Otherwise it sleeps
// on a plain timer and the spare tokens make up for the late wake-up.
//
// Measured on a 2-core Linux virtual machine (go1.26, BenchmarkRate, 1 to
// 64 waiters): the achieved share of the rate, and the process's CPU time
// per start; x/time/rate's Wait on the same machine for comparison.
//
//	                     this Rate               x/time/rate
//	burst 1,    1,000/s  98–99.9%   65–113µs     99.6–100%  39–46µs
//	burst 1,   10,000/s  98–99.5%   100–106µs    18–100%    6–18µs
//	burst 1,  100,000/s  96% (1 waiter),         3–67%      2–15µs
//	                     75–92% (8–64)  10–13µs
//	burst 20,  10,000/s  98–100%    5–8µs
//	burst 200, 100,000/s 99.7–100%  1µs
//
// Below a millisecond or so between tokens, precision at burst 1 costs a
// processor spinning. What it still loses at 100,000/s comes from the
// machine pausing threads for a millisecond or more, which a bucket of
// burst 1 cannot make up, and from handing the clock from one waiter to
// the next. A burst worth 2ms of tokens makes up for both and spins not at
// all. In every case the bound holds at the moments permits are granted.
//
// On any other clock (WithClock) waits are plain timers on that clock and
// nothing spins.
type Rate struct {
	core
	b bucket
}

// NewRate returns a Rate of perSecond tokens per second and a bucket of
// burst tokens. Fractional rates are allowed: 0.2 is one token every five
// seconds. The time between tokens is kept in whole nanoseconds, rounded
// up, so a rate r runs at 10⁹/⌈10⁹/r⌉ per second: within 1% of r up to
// 10⁷ per second, and up to half slower between 10⁸ and 10⁹ (7·10⁸ runs at
// 5·10⁸); rates above 10⁹ per second count as 10⁹, and the slowest rate is
// one token per 2⁵⁰ nanoseconds (13.03 days).
//
// A bad value (a rate that is not positive and finite, a burst below 1, a
// bucket that would take over 2⁶⁰ nanoseconds (36.5 years) to fill, or a
// bad option) does not panic: Err, and every Acquire, TryAcquire, SetRate
// and SetBurst, return an error that wraps [ErrBadValue] and names the
// value, and the meter stays unusable: its Stats stay zero, and Burst
// reports the burst asked for (or 1 for one below 1).
func NewRate(perSecond float64, burst int, opts ...Option) *Rate {
	o := buildOptions(opts)
	r := &Rate{}
	iv, why := toInterval(perSecond)
	if why == "" {
		why = checkSpan(burst, iv)
	}
	var err error
	if why != "" {
		err = badValue("NewRate(%v, %d): %s", perSecond, burst, why)
	}
	r.b = bucket{interval: max(iv, 1), burst: int64(max(burst, 1)), tat: fullSince}
	r.init(o, &r.b, err)
	r.precise = isReal(o.clock)
	return r
}

// Acquire waits for a token and returns the permit of one start. It blocks
// while the bucket is empty, while a push-back pause is in force, and
// while earlier callers wait. It returns ctx.Err() when ctx ends first
// (at once when ctx has already ended), taking no token; on the real clock
// the first waiter may notice the end up to a millisecond late during its
// final precise wait. It returns the meter's error when the meter was
// built with a bad value.
//
// Done with status [Unused] gives the token back, as far as the bucket
// has room for it and unless that could let more than burst + perSecond·t
// grants through: whole when no token was granted since, or when every
// token granted since found the bucket short of a whole token even
// without the tokens given back since (a burst of up to 32 tokens taken
// at once and given back, in any order, comes back whole); in part, or
// not at all, when a grant since found the bucket fuller (with burst 1,
// as soon as another token was granted). The meter keeps a bounded record
// of its grants, so of more than 32 permits outstanding, the oldest may
// give back less than that. A permit granted before a SetRate or SetBurst
// that changed the bucket gives nothing back. A positive Outcome.Pause
// holds off every grant for that long.
func (r *Rate) Acquire(ctx context.Context) (Permit, error) {
	seq, err := r.acquire(ctx)
	if err != nil {
		return nil, err
	}
	return r.permit(seq), nil
}

// TryAcquire takes a token when one may be granted now, without waiting:
// the bucket holds one for this caller after every waiting Acquire has
// had its own, and no pause is in force. Otherwise it returns a nil permit
// and how long until a token could be granted (the pause included; always
// positive). Errors are as for Acquire; it never blocks.
func (r *Rate) TryAcquire(ctx context.Context) (Permit, time.Duration, error) {
	seq, ok, wait, err := r.try(ctx)
	if !ok {
		return nil, wait, err
	}
	return r.permit(seq), 0, nil
}

// Delay reports, without taking anything, how long from now until n tokens
// are in the bucket for a new caller, after every waiting Acquire has had
// its own; the pause in force is included, and 0 means now. n larger than
// the burst can never be in the bucket: Delay then returns the largest
// Duration. A meter built with a bad value reports 0, so that the caller
// goes on to Acquire and gets the error.
func (r *Rate) Delay(n int) time.Duration {
	if r.fault() != nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if int64(n) > r.b.burst {
		return math.MaxInt64
	}
	now := r.now()
	if n < 1 {
		return time.Duration(r.pauseLeft(now))
	}
	return time.Duration(r.ready(now, r.waiting+n))
}

// Burst returns the size of the bucket.
func (r *Rate) Burst() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int(r.b.burst)
}

// SetRate changes the rate from the next grant on, for every call sharing
// the meter; the tokens in the bucket stay. A waiter already in line is
// served at the new rate, rounded as NewRate says, and so is an input that
// a trimeter run under PerKey has set aside for the meter: it asks again
// at once. A rate that is not positive and finite, below one token per
// 2⁵⁰ nanoseconds (13.03 days), or too slow to fill the bucket within 2⁶⁰
// nanoseconds (36.5 years), is an error that wraps [ErrBadValue] and names
// it; the old rate stays.
func (r *Rate) SetRate(perSecond float64) error {
	if err := r.fault(); err != nil {
		return err
	}
	iv, why := toInterval(perSecond)
	if why == "" {
		why = r.setInterval(iv)
	}
	if why != "" {
		return badValue("SetRate(%v): %s", perSecond, why)
	}
	changes.Notify()
	return nil
}

// SetBurst changes the size of the bucket from the next grant on. The
// tokens in the bucket stay, as many as fit: raising the burst lets the
// bucket fill further from now on but adds no token. A burst below 1, or
// one that would take over 2⁶⁰ nanoseconds (36.5 years) to fill at the
// rate, is an error that wraps [ErrBadValue] and names it; the old burst
// stays.
func (r *Rate) SetBurst(n int) error {
	if err := r.fault(); err != nil {
		return err
	}
	if why := r.setBurst(n); why != "" {
		return badValue("SetBurst(%d): %s", n, why)
	}
	changes.Notify()
	return nil
}

// setInterval makes iv the bucket's interval from now on, and returns
// why not, or "". Like every method that reads the meter's clock under
// mu, it unlocks mu in a deferred call: a clock of the user's (WithClock)
// may panic, and the meter must stay usable.
func (r *Rate) setInterval(iv int64) (why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if why = checkSpan(int(r.b.burst), iv); why == "" {
		r.b.setInterval(r.now(), iv)
		r.poke()
	}
	return why
}

// setBurst makes n the bucket's burst from now on, and returns why not,
// or "".
func (r *Rate) setBurst(n int) (why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if why = checkSpan(n, r.b.interval); why == "" {
		r.b.setBurst(r.now(), int64(n))
		r.poke()
	}
	return why
}

// Err returns the error of a meter built with a bad value, or of a zero
// value (one not made by its New function), or nil.
func (r *Rate) Err() error { return r.fault() }

// Stats returns what the meter has done: Started counts the grants whose
// permits were not Done as [Unused] (whether or not their tokens came
// back), InFlight the permits not yet Done, Waiting the callers blocked in
// Acquire, and PausedUntil the end of the pause in force.
func (r *Rate) Stats() Stats { return r.stats() }

type ratePermit struct {
	r   *Rate
	seq uint64
}

func init() {
	ownrate.Mark = func(m any) {
		m.(*Rate).mon = nil // see core.mon, and own
	}
}

// own says whether r is a run's own (internal/ownrate), whose permits are
// reused once done: Mark drops its monitor, which every Rate that NewRate
// makes has otherwise, before r is shared.
func (r *Rate) own() bool { return r.mon == nil }

// ratePermits holds the done permits of the runs' own Rates.
var ratePermits = sync.Pool{New: func() any { return new(ratePermit) }}

// permit returns the permit of the grant seq.
func (r *Rate) permit(seq uint64) Permit {
	if !r.own() {
		return &ratePermit{r: r, seq: seq}
	}
	p := ratePermits.Get().(*ratePermit)
	p.r, p.seq = r, seq
	return p
}

func (p *ratePermit) Done(o Outcome) {
	r := p.r
	// The monitor first: settle reads the clock, which may panic.
	r.finished(o.Status)
	if o.Status == Unused || o.Pause > 0 { // else the bucket has nothing to do
		r.settle(p.seq, o)
	}
	if r.own() {
		*p = ratePermit{}
		ratePermits.Put(p)
	}
}

// settle gives back the token of the grant seq, done Unused, and pauses
// the meter for o.Pause.
func (r *Rate) settle(seq uint64, o Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if o.Status == Unused && r.b.refund(now, seq) {
		r.poke()
	}
	r.pauseFor(now, o.Pause)
}

package throttle

import (
	"context"
	"math"
	"time"

	"github.com/trimeter-go/trimeter/internal/changes"
)

// A Concurrency lets at most a limit of attempts run at once across every
// call that shares it. A permit is a slot: taken just before an attempt
// starts and given back by Done when it ends.
//
// Acquire waits in line: waiters are served first come, first served, and
// a newcomer never overtakes them. Lowering the limit cancels nothing: the
// attempts in flight finish, and no new one starts until fewer than the
// new limit run. Raising it lets waiters start at once. A cancelled context
// ends a wait at once and takes nothing.
//
// Acquire and Done cost a lock and, when someone waits, one goroutine
// wake-up; a permit allocates nothing.
type Concurrency struct {
	core
	s slots
}

// slots is the gate of Concurrency and Adaptive.
type slots struct {
	limit, inFlight int
}

func (s *slots) delay(_ int64, k int) int64 {
	if s.inFlight+k <= s.limit {
		return 0
	}
	return blocked
}

func (s *slots) slack() int64 { return math.MaxInt64 }

func (s *slots) take(int64) uint64 {
	s.inFlight++
	return 0
}

// NewConcurrency returns a Concurrency that lets n attempts run at once.
//
// A bad value (n below 1, or a bad option) does not panic: Err, and every
// Acquire, TryAcquire and SetLimit, return an error that wraps
// [ErrBadValue] and names the value, and the meter stays unusable: its
// Stats stay zero.
func NewConcurrency(n int, opts ...Option) *Concurrency {
	c := &Concurrency{s: slots{limit: n}}
	var err error
	if n < 1 {
		err = badValue("NewConcurrency(%d): the limit must be at least 1", n)
	}
	c.init(buildOptions(opts), &c.s, err)
	c.mon.SetLimit(int64(n))
	return c
}

// Acquire waits for a free slot and returns its permit. It blocks while
// the limit's worth of attempts run, while a push-back pause is in force,
// and while earlier callers wait. It returns ctx.Err() when ctx ends first
// (at once when ctx has already ended), taking no slot, and the meter's
// error when the meter was built with a bad value.
//
// The permit's Done frees the slot, whatever the outcome; a positive
// Outcome.Pause also holds off every start for that long. Call Done
// exactly once.
func (c *Concurrency) Acquire(ctx context.Context) (Permit, error) {
	if _, err := c.acquire(ctx); err != nil {
		return nil, err
	}
	return (*slotPermit)(c), nil
}

// TryAcquire takes a slot when one is free for this caller now (after
// every waiting Acquire has had its own) and no pause is in force.
// Otherwise it returns a nil permit and how long to wait: the rest of the
// pause when one is in force (full or not), else 0 when the meter is
// full, meaning until a permit is done.
// Errors are as for Acquire; it never blocks.
func (c *Concurrency) TryAcquire(ctx context.Context) (Permit, time.Duration, error) {
	_, ok, wait, err := c.try(ctx)
	if !ok {
		return nil, wait, err
	}
	return (*slotPermit)(c), 0, nil
}

// SetLimit changes the limit from the next start on, for every call
// sharing the meter. Lowering it cancels nothing: the attempts in flight
// finish first. Raising it lets waiters start at once, and the inputs
// that a trimeter run under PerKey has set aside for the meter, which ask
// again at once. A limit below 1 is
// an error that wraps [ErrBadValue] and names it; the old limit stays.
func (c *Concurrency) SetLimit(n int) error {
	if err := c.fault(); err != nil {
		return err
	}
	if n < 1 {
		return badValue("SetLimit(%d): the limit must be at least 1", n)
	}
	c.mu.Lock()
	c.s.limit = n
	c.mon.SetLimit(int64(n))
	c.poke()
	c.mu.Unlock()
	changes.Notify()
	return nil
}

// Err returns the error of a meter built with a bad value, or of a zero
// value (one not made by its New function), or nil.
func (c *Concurrency) Err() error { return c.fault() }

// Stats returns what the meter has done: Limit is the limit in force,
// InFlight the permits not yet Done, Waiting the callers blocked in
// Acquire, and PausedUntil the end of the pause in force.
func (c *Concurrency) Stats() Stats { return c.stats() }

// slotPermit is a Concurrency's permit: the meter itself, seen as the slot
// to give back, so that a permit costs no allocation.
type slotPermit Concurrency

func (p *slotPermit) Done(o Outcome) {
	c := (*Concurrency)(p)
	c.mu.Lock()
	defer c.mu.Unlock() // deferred: the pause reads the clock, which may panic
	c.s.inFlight--
	c.poke()
	c.finished(o.Status) // under mu, as the start was: a slot freed here and taken again never counts twice in InFlight
	if o.Pause > 0 {
		c.pauseFor(c.now(), o.Pause) // last: the slot is free whatever the clock does
	}
}

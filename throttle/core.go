package throttle

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/trimeter-go/trimeter/internal/timing"
)

// A gate is the limit a meter enforces. Its methods run under the meter's
// lock, with times in nanoseconds since the meter was built.
type gate interface {
	// delay reports how long from now until k grants could be made one
	// after another: 0 when they can be made now, or blocked when only a
	// finished attempt can make room.
	delay(now int64, k int) int64
	// take makes one grant at now and returns a tag for its permit.
	take(now int64) uint64
	// slack is how late, in nanoseconds, a grant may come without
	// costing the gate anything: a bucket holds burst−1 tokens beyond
	// the one due, and makes up for a late wake-up with them.
	slack() int64
}

// blocked is the delay of a gate that waits for a release, not for time.
const blocked = -1

// A waiter is one Acquire call waiting in line.
type waiter struct {
	prev, next *waiter
	wake       chan struct{} // one-slot mailbox: "look again"
}

// core is what every meter of this package shares: a gate, a push-back
// pause, and a first-in first-out line of waiters in which only the head
// watches the clock; the others sleep until they become the head.
type core struct {
	clock   clockwork.Clock
	epoch   time.Time // time zero of the meter's nanosecond times
	precise bool      // the real clock: the head may wait precisely (pace)
	jumps   bool      // not the real clock: it may move while a timer is set (see timing.Settle)
	err     error     // set when the meter was built with a bad value
	mon     *Monitor  // nil for a run's own Rate (internal/ownrate): no counts, Stats zero

	mu         sync.Mutex
	gate       gate
	paused     int64 // end of the pause in force; math.MinInt64 before the first
	head, tail *waiter
	waiting    int
}

func (c *core) init(o options, g gate, err error) {
	c.clock = o.clock
	c.jumps = !isReal(o.clock)
	c.epoch = o.clock.Now()
	c.err = err
	if c.err == nil {
		c.err = o.err
	}
	c.mon = NewMonitor(o.clock)
	c.gate = g
	c.paused = math.MinInt64 // a clock set back past the epoch is no pause
}

// errZero is the error of a meter that was not made by its New function:
// its zero value has no limit to enforce.
var errZero = badValue("the meter is a zero value: make it with NewRate, NewConcurrency or NewAdaptive")

// fault returns the meter's error: the bad value it was built with, or
// errZero for a zero value.
func (c *core) fault() error {
	if c.gate == nil {
		return errZero
	}
	return c.err
}

func (c *core) now() int64 {
	if !c.jumps {
		// The real clock's Since reads the wall clock too; time.Since
		// reads only the monotonic one, which is all a meter uses, at
		// about half the cost of a start's clock reading.
		return int64(time.Since(c.epoch))
	}
	return int64(c.clock.Since(c.epoch))
}

// ready reports how long from now until k grants could be made, the pause
// included, or blocked.
func (c *core) ready(now int64, k int) int64 {
	d := c.gate.delay(now, k)
	if d == blocked {
		return blocked
	}
	return max(d, c.pauseLeft(now))
}

// pauseLeft returns how long from now the pause in force lasts, or 0. A
// pause for good ends at the largest time there is: read on a clock set
// back before the meter's start (now < 0), what is left of it does not
// fit in an int64, and stays the largest wait.
func (c *core) pauseLeft(now int64) int64 {
	if c.paused <= now {
		return 0
	}
	if left := c.paused - now; left > 0 {
		return left
	}
	return math.MaxInt64
}

// grant makes a grant at now. The monitor counts it first: the first
// start reads the meter's clock, which may panic, and then nothing has
// been taken.
func (c *core) grant(now int64) uint64 {
	if c.mon != nil {
		c.mon.Start(false)
	}
	return c.gate.take(now)
}

// acquire takes a grant, waiting in line for it. A newcomer is served at
// once only when the gate has room for everyone already waiting as well,
// so waiters are never overtaken.
func (c *core) acquire(ctx context.Context) (uint64, error) {
	if err := c.fault(); err != nil {
		return 0, err
	}
	if ctx == nil {
		return 0, errNilContext
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	tag, w := c.enter()
	if w == nil {
		return tag, nil
	}
	tag, err := c.wait(ctx, w)
	select { // a poke that came after the last look
	case <-w.wake:
	default:
	}
	waiters.Put(w)
	return tag, err
}

// enter makes a grant at once when the gate has room for every waiter and
// one more, or else puts a new waiter at the tail of the line and returns
// it. mu is unlocked in a deferred call, here and wherever the meter's
// clock is read under it: a clock of the user's (WithClock) may panic,
// and the meter must stay usable.
func (c *core) enter() (tag uint64, w *waiter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.ready(now, c.waiting+1) == 0 {
		return c.grant(now), nil
	}
	return 0, c.push()
}

// wait loops until w, at the head of the line, gets its grant or ctx ends.
// A panic on the way (in the meter's clock, or in ctx's Err) takes w out of
// the line, so that the waiters behind it are served.
func (c *core) wait(ctx context.Context, w *waiter) (uint64, error) {
	var timer clockwork.Timer
	inLine := true
	defer func() {
		if inLine {
			c.mu.Lock()
			c.leave(w)
			c.mu.Unlock()
		}
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		l, err := c.look(ctx, w)
		switch {
		case err != nil:
			inLine = false
			return 0, err
		case l.wait == 0:
			inLine = false
			return l.tag, nil
		case l.wait == notHead:
			c.sleep(ctx, w, nil)
		case l.wait == blocked:
			if timer != nil {
				// Set for a pause or a token earlier: a waiter for a
				// permit to be given back waits on no timer.
				timer.Stop()
			}
			c.sleep(ctx, w, nil)
		case l.precise:
			pace(ctx, w.wake, c.epoch.Add(time.Duration(l.now+l.wait)))
		default:
			d := time.Duration(l.wait)
			if timer == nil {
				timer = c.clock.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			if c.jumps && !timing.Settle(c.clock, timer, c.epoch.Add(time.Duration(l.now)), d) {
				continue // due already: the clock moved past it meanwhile
			}
			c.sleep(ctx, w, timer.Chan())
		}
	}
}

// A sight is what a waiter found when it looked at the gate.
type sight struct {
	tag     uint64 // the grant's, when wait is 0
	wait    int64  // how long the gate asks the head to wait, blocked or notHead
	now     int64  // when the head looked
	precise bool   // the head waits precisely (pace)
}

// notHead is the wait of a waiter that is not at the head of the line.
const notHead = -2

// look is one look of waiter w at the gate: it takes w out of the line
// with ctx's error when ctx has ended, or with a grant when the gate has
// room for the head.
func (c *core) look(ctx context.Context, w *waiter) (sight, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		c.leave(w)
		return sight{}, err
	}
	if c.head != w {
		return sight{wait: notHead}, nil
	}
	l := sight{now: c.now()}
	if l.wait = c.ready(l.now, 1); l.wait == 0 {
		l.tag = c.grant(l.now)
		c.leave(w)
	}
	l.precise = c.precise && time.Duration(c.gate.slack()) < coarseLate.margin()
	return l, nil
}

func (c *core) sleep(ctx context.Context, w *waiter, timer <-chan time.Time) {
	select {
	case <-w.wake:
	case <-timer:
	case <-ctx.Done():
	}
}

// try takes a grant if one can be made now; otherwise it says how long to
// wait, zero meaning until a release.
func (c *core) try(ctx context.Context) (uint64, bool, time.Duration, error) {
	if err := c.fault(); err != nil {
		return 0, false, 0, err
	}
	if ctx == nil {
		return 0, false, 0, errNilContext
	}
	if err := ctx.Err(); err != nil {
		return 0, false, 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	d := c.ready(now, c.waiting+1)
	if d == 0 {
		return c.grant(now), true, 0, nil
	}
	if d == blocked {
		d = c.pauseLeft(now)
	}
	return 0, false, time.Duration(d), nil
}

// pauseFor holds off grants for d from now; a shorter pause never shortens
// a longer one. The caller holds mu.
func (c *core) pauseFor(now int64, d time.Duration) {
	if d <= 0 {
		return
	}
	end := now + int64(d)
	if end < now { // overflow: as good as forever
		end = math.MaxInt64
	}
	if end > c.paused {
		c.paused = end
		if c.mon != nil {
			c.mon.SetPause(c.epoch.Add(time.Duration(end)))
		}
	}
}

// finished records the end of an attempt in the monitor.
func (c *core) finished(s Status) {
	switch {
	case c.mon == nil:
	case s == Unused:
		c.mon.Unstart()
	default:
		c.mon.Finish(s == Failed || s == PushedBack)
	}
}

// poke tells the head of the line to look again. The caller holds mu.
func (c *core) poke() {
	if c.head != nil {
		select {
		case c.head.wake <- struct{}{}:
		default:
		}
	}
}

// waiters recycles waiters: a wait that blocks then allocates nothing.
var waiters = sync.Pool{New: func() any { return &waiter{wake: make(chan struct{}, 1)} }}

// push adds a waiter at the tail of the line. The caller holds mu.
func (c *core) push() *waiter {
	w := waiters.Get().(*waiter)
	w.prev = c.tail
	if c.tail == nil {
		c.head = w
	} else {
		c.tail.next = w
	}
	c.tail = w
	c.waiting++
	c.count(1)
	return w
}

// leave takes w out of the line and wakes the new head when w was the
// head. The caller holds mu.
func (c *core) leave(w *waiter) {
	wasHead := c.head == w
	if w.prev == nil {
		c.head = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		c.tail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.prev, w.next = nil, nil
	c.waiting--
	c.count(-1)
	if wasHead {
		c.poke()
	}
}

// count adds delta to the monitor's count of waiters, if there is a
// monitor. The caller holds mu.
func (c *core) count(delta int64) {
	if c.mon != nil {
		c.mon.Wait(delta)
	}
}

func (c *core) stats() Stats {
	if c.fault() != nil || c.mon == nil {
		return Stats{}
	}
	return c.mon.Stats()
}

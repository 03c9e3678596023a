package throttle

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Waiting precisely on the real clock.
//
// A Go timer wakes its goroutine late: on Linux the runtime sleeps in
// whole milliseconds, so a 100µs timer fires after about 1.1ms, and any
// timer some 0.1–1.1ms after its time. A token bucket of burst 1 loses
// every late nanosecond for good (the next token is counted from the
// grant), so at 1,000 starts per second and above a timer alone reaches
// only a fraction of the rate.
//
// pace therefore waits in up to three stages, each ending early enough for
// the next one to finish on time:
//
//  1. a Go timer, set to wake a learned margin before the due time;
//  2. on Linux, nanosleep(2) in steps of at most fineStep, whose kernel
//     timer wakes some 70µs late instead of a millisecond (it blocks an OS
//     thread, as any system call does, and cannot see a cancel before it
//     returns);
//  3. a spin that checks the time, yielding the processor
//     (runtime.Gosched) while more than tightSpin is left.
//
// A Rate waits with pace only on the real clock, and only while its spare
// tokens (burst−1 of them) cannot make up for a late timer.
//
// The margins of stages 1 and 2 are learned from every wake-up of this
// process (a mean and a mean deviation, as TCP estimates its round-trip
// time), so the spin stays short on a machine whose timers are precise
// and grows only as much as a coarse machine needs. A wait shorter than
// the margin of stage 1 sleeps on no Go timer and so measures nothing: it
// relaxes that margin a step back toward its initial estimate instead, so
// that a margin raised by a stall does not stay raised for good.

const (
	fineStep  = time.Millisecond      // longest single nanosleep
	fineMin   = 20 * time.Microsecond // shorter fine sleeps are spun instead
	tightSpin = 20 * time.Microsecond // the last stretch is spun without yielding
)

var (
	coarseLate = newLateness(time.Millisecond)
	fineLate   = newLateness(100 * time.Microsecond)
)

// pace returns when due has passed on the real clock, when wake has a
// message (the message is taken) or when ctx ends.
func pace(ctx context.Context, wake <-chan struct{}, due time.Time) {
	for first := true; ; first = false {
		select {
		case <-wake:
			return
		case <-ctx.Done():
			return
		default:
		}
		left := time.Until(due)
		if left <= 0 {
			return
		}
		reserve := time.Duration(0)
		if haveFineSleep {
			reserve = fineLate.margin()
		}
		if d := left - coarseLate.margin() - reserve; d > 0 {
			if !coarseSleep(ctx, wake, d) {
				return
			}
			continue
		}
		if first {
			// The margin leaves this wait no Go timer to learn from: a
			// margin that only such waits follow would never be measured
			// again, and one raised by a stall would stay for good.
			coarseLate.relax()
		}
		if d := left - reserve; haveFineSleep && d >= fineMin {
			d = min(d, fineStep)
			start := time.Now()
			fineSleep(d)
			fineLate.observe(time.Since(start) - d)
			continue
		}
		if left > tightSpin {
			runtime.Gosched()
		}
	}
}

// coarseSleep sleeps on a Go timer for d and learns how late it woke. It
// reports false when wake or ctx cut the sleep short.
func coarseSleep(ctx context.Context, wake <-chan struct{}, d time.Duration) bool {
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		coarseLate.observe(time.Since(start) - d)
		return true
	case <-wake:
	case <-ctx.Done():
	}
	return false
}

// lateness estimates how late a kind of sleep wakes: a moving mean and
// mean deviation; margin is the mean plus two deviations.
type lateness struct {
	mu        sync.Mutex
	mean, dev float64 // nanoseconds
	mean0     float64 // the initial mean and deviation, which relax returns to
	dev0      float64
	cur       atomic.Int64
}

func newLateness(initial time.Duration) *lateness {
	l := &lateness{mean: float64(initial), dev: float64(initial) / 4}
	l.mean0, l.dev0 = l.mean, l.dev
	l.cur.Store(int64(l.mean + 2*l.dev))
	return l
}

// relax moves an estimate above the initial one a step back toward it:
// pace calls it for a wait too short for the margin to be measured, so
// that a margin raised by a stall (a busy or paused machine) comes back
// once waits are short again, as it would for a process that never saw
// the stall. It never goes below the initial estimate: only a measured
// wake-up brings the margin lower.
func (l *lateness) relax() {
	if l.cur.Load() <= int64(l.mean0+2*l.dev0) {
		return // the usual case, taken without the lock
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mean <= l.mean0 && l.dev <= l.dev0 {
		return
	}
	l.mean -= max(l.mean-l.mean0, 0) / 16
	l.dev -= max(l.dev-l.dev0, 0) / 16
	l.cur.Store(int64(l.mean + 2*l.dev))
}

func (l *lateness) margin() time.Duration { return time.Duration(l.cur.Load()) }

func (l *lateness) observe(late time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	x := max(float64(late), 0)
	// A thread descheduled for a while is not the timer's lateness: cap
	// one sample's pull, so the margin follows lasting change only.
	x = min(x, l.mean+4*l.dev+float64(100*time.Microsecond))
	e := x - l.mean
	l.mean += e / 8
	if e < 0 {
		e = -e
	}
	l.dev += (e - l.dev) / 4
	l.cur.Store(int64(l.mean + 2*l.dev))
}

package trimeter

import (
	"fmt"
	"runtime/debug"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/trimeter-go/trimeter/internal/timing"
	"github.com/trimeter-go/trimeter/throttle"
)

// next makes the calling worker the starter and returns the next task,
// admitted through every meter, with its permits in *ps. ok is false when
// no task will start any more, or when the worker retires (keptIdle).
func (e *engine[T, R]) next(ps *[]throttle.Permit) (t task[T], ok bool) {
	if e.pacing {
		if !e.takePacedTurn() {
			return t, false
		}
		defer func() { e.passPacedTurn(ok && t.err == nil) }()
	} else {
		if !e.takeTurn() {
			return t, false
		}
		defer e.passTurn()
	}
	for {
		if t, ok = e.choose(); !ok {
			return t, false
		}
		if t.err != nil { // an upstream error: no meter, no fn
			break
		}
		gen := e.limitsGen.Load() // a limit changed while the meters answer voids their wait
		wait, err := e.admitUnpaused(&t, ps, true)
		if err != nil {
			e.unstart(t, err)
			continue
		}
		if wait > 0 {
			e.repark(t, wait, gen)
			continue
		}
		break
	}
	if e.hire {
		e.spawn()
	}
	return t, true
}

// takeTurn makes the calling worker the starter, once no other worker is.
// It returns false, without the turn, when the worker retires instead of
// waiting (keptIdle).
//
// The turn is not a sync.Mutex on purpose: a mutex whose waiters have
// waited over a millisecond (as they do under a rate limit) hands itself
// to the oldest waiter on every unlock, so the worker that just started a
// task could never take the turn back when its task ends, and every start
// would wait for a sleeping worker to be scheduled. Here a worker whose
// task has ended takes a free turn at once; the waiter woken for it finds
// the turn taken and sleeps again. Measured at 100,000 starts per second,
// this halved the CPU time per start.
//
// While the turn is lent for a pull (pullLocked), a worker takes it only
// when an input waiting aside may have become due; until then it waits.
func (e *engine[T, R]) takeTurn() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.starting || (e.pulling && !e.lanesDue && !e.stopped) {
		if e.retiresLocked(e.turnWaits) {
			if e.surplusLocked(e.turnWaits) {
				e.callTurnLocked()
			}
			return false
		}
		e.awaitTurnLocked()
	}
	e.starting = true
	if e.surplusLocked(e.turnWaits) {
		e.callTurnLocked() // to end: see retiresLocked
	}
	return true
}

// awaitTurnLocked waits on turn once, counted in turnWaits.
func (e *engine[T, R]) awaitTurnLocked() {
	e.turnWaits++
	e.turn.Wait()
	e.turnWaits--
	e.turnCalled = false
}

// callTurnLocked wakes a worker waiting on turn, unless one woken for it
// has not looked at the turn yet: that one sees the turn as it is when it
// has mu again, and takes it if it is free, so a second one woken would
// only find it taken and wait again. A starter whose tasks are quick hands
// the turn on and takes it back many times while one wakes up.
func (e *engine[T, R]) callTurnLocked() {
	if e.turnWaits > 0 && !e.turnCalled {
		e.turnCalled = true
		e.turn.Signal()
	}
}

// passTurn ends the calling worker's turn as the starter, and wakes one
// worker waiting for it (callTurnLocked).
//
// A worker that took the turn lent for a pull leaves the next input
// waiting aside to come due to the worker that callLentLocked calls then,
// as the lend left the first.
func (e *engine[T, R]) passTurn() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.starting = false
	switch {
	case e.pulling:
		e.watchLentLocked(e.lanesAt)
	default:
		e.callTurnLocked()
	}
}

// unstart ends a chosen task that could not be admitted (a meter failed, or
// the run stopped while it waited).
func (e *engine[T, R]) unstart(t task[T], err error) {
	var zero R
	e.finish(t, zero, err)
}

// choose waits until a task may take a slot and returns it with its slots
// taken: an input that waited aside for its key and may now start, or the
// next input of the source.
//
// The call's push-back pause holds up starts, not pulls: with a slot free,
// the next input is pulled during the pause and waits for its end, so that
// a sequence that has ended ends the run at once, not when the pause is
// over.
func (e *engine[T, R]) choose() (t task[T], ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for !e.stoppedLocked() {
		now := clockReading{clock: e.clock}
		var retry time.Time
		switch {
		case !e.hasRoom():
			// wait for a slot
		default:
			if !e.pausedUntil.IsZero() && now.get().Before(e.pausedUntil) {
				retry = e.pausedUntil // nothing waiting aside starts before
			} else if t, ok = e.dueLocked(&now); ok {
				e.takeLocked(&t)
				return t, true
			} else {
				retry = e.lanesAt
			}
			if !e.pulledAll && !e.pulling && e.parked <= e.cfg.lookahead {
				if t, ok = e.pullLocked(retry); !ok {
					continue
				}
				// The input waits for the call's pause, in force when
				// it was pulled or begun while it was produced; an
				// upstream error starts no task, and does not.
				if t.err == nil {
					e.waitPauseLocked()
				}
				if e.stoppedLocked() {
					return t, false
				}
				now = clockReading{clock: e.clock}
				// An input may start at once unless one of its key
				// waits aside (that one goes first), or the slot was
				// taken during the pull by a worker the turn was lent to.
				if (e.parked == 0 || (t.key != nil && t.key.waiting == 0)) && e.hasRoom() {
					if _, ok = e.mayStartLocked(&t, &now, e.parked); ok {
						e.takeLocked(&t)
						return t, true
					}
				}
				e.parkLocked(t)
				continue
			}
			if e.pulledAll && e.parked == 0 {
				return t, false
			}
		}
		e.sleepLocked(retry)
	}
	return t, false
}

// dueLocked takes an input that waited aside for its key and may start
// now, if there is one: it goes before the next input of the source.
// Otherwise lanesAt says when one may start by the clock.
func (e *engine[T, R]) dueLocked(now *clockReading) (t task[T], ok bool) {
	if !e.lanesDue && !e.lanesAt.IsZero() && !now.get().Before(e.lanesAt) {
		e.lanesDue = true // the clock has let one start
	}
	if e.lanesDue {
		if t, e.lanesAt, ok = e.unparkLocked(now); ok {
			return t, true
		}
		e.lanesDue = false
	}
	return t, false
}

// clockReading reads the clock once, when first asked: reading the clock
// costs more than the rest of a scheduling decision on some machines.
type clockReading struct {
	clock clockwork.Clock
	t     time.Time
}

func (c *clockReading) get() time.Time {
	if c.t.IsZero() {
		c.t = c.clock.Now()
	}
	return c.t
}

// hasRoom says whether a task may take a call slot. Without MaxAtOnce
// there is always one, but for the feeder, which then waits while its
// queue is full (unboundedQueue).
func (e *engine[T, R]) hasRoom() bool {
	if e.limit == 0 {
		return !e.fed || e.tasks.n < unboundedQueue
	}
	return e.running < e.limit && e.open < e.window
}

func (e *engine[T, R]) takeLocked(t *task[T]) {
	e.open++
	e.running++
	// Every worker is busy, this one with t: another one will be needed
	// to start the next task while t runs.
	live := e.workers - e.retired
	e.hire = e.running >= live && (e.limit == 0 || live < e.limit)
	if t.key != nil {
		t.key.open++
	}
}

// pullLocked pulls the next input with mu released, so finished results
// reach the consumer while the source works out its next value. ok is
// false when the source has ended or panicked, or the run stopped.
//
// While inputs wait aside, the turn is lent for the pull: the sequence may
// be waiting for the results of those very inputs (a crawler that feeds
// back the links it finds), so one of them that becomes due meanwhile (its
// key came free, or the clock reached at, when one may start by the
// clock) is started by another worker, which may not pull. If one has the
// turn when the pull returns, the input pulled waits aside too, behind any
// earlier one of its key, ok is false, and the caller has the turn again
// once that worker has handed it on.
func (e *engine[T, R]) pullLocked(at time.Time) (t task[T], ok bool) {
	if e.parked > 0 {
		e.lendTurnLocked(at)
	}
	e.mu.Unlock()
	t, id, ok, p := e.pull() // with mu locked again
	if ok = e.pulledLocked(&t, id, ok, p); e.pulling {
		if ok && e.starting {
			e.parkLocked(t)
			ok = false
		}
		e.takeBackTurnLocked()
	}
	return t, ok
}

// pulledLocked sees to what pull returned; it reports whether t may be
// started or set aside.
func (e *engine[T, R]) pulledLocked(t *task[T], id any, ok bool, p *PanicError) bool {
	switch {
	case p != nil:
		e.panicLocked(p)
		return false
	case !ok:
		e.endInputsLocked()
		return false
	case e.stoppedLocked():
		// The run stopped while the source produced t (a failure or the
		// parent's end, perhaps not recorded yet): t does not start.
		return false
	}
	if end, ok := t.err.(*stageEnded); ok {
		// The stage before's run ended: that ends this run at once, as
		// its own ctx ending would, not once t gets a slot (it might wait
		// aside behind an input whose key is busy).
		e.stopLocked(end.err)
		return false
	}
	if e.keyOf != nil && t.err == nil {
		k, p := e.keyLocked(id)
		if p != nil {
			e.panicLocked(p)
			return false
		}
		t.key = k
	}
	return true
}

// lendTurnLocked frees the turn for a pull (see pullLocked). A worker
// takes it when an input waiting aside may have become due
// (callLentLocked): by a release of its key, or by lendTimer at at.
func (e *engine[T, R]) lendTurnLocked(at time.Time) {
	e.pulling = true
	e.starting = false
	e.watchLentLocked(at)
}

// watchLentLocked sees that a worker is called to take the turn lent for a
// pull once an input waiting aside may be due: now, if one may be, and
// otherwise at at (by lendTimer), or at the release of a key.
func (e *engine[T, R]) watchLentLocked(at time.Time) {
	if !at.IsZero() && !at.Equal(e.lendAt) && !e.stopped {
		e.setLendTimerLocked(at)
	}
	e.callLentLocked()
}

// setLendTimerLocked sets lendTimer to mark the inputs waiting aside due
// at at. On the real clock it stays set after the pull: the next pull,
// which most often looks for the same time, then only compares it. A mark
// that comes when no pull is lent costs one look at the lanes.
func (e *engine[T, R]) setLendTimerLocked(at time.Time) {
	now := e.clock.Now()
	d := at.Sub(now)
	if d <= 0 {
		e.lanesDue = true
		return
	}
	e.lendAt = at
	if e.lendTimer == nil {
		e.lendTimer = e.timerFuncs.AfterFunc(e.clock, d, func() {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.lendAt = time.Time{}
			e.lanesDue = true
			e.callLentLocked()
		})
	} else {
		e.lendTimer.Reset(d)
	}
	if e.jumps && !timing.Settle(e.clock, e.lendTimer, now, d) {
		// The clock moved past at while the timer was set.
		e.lendAt = time.Time{}
		e.lanesDue = true
	}
}

// callLentLocked calls a worker to take the turn while it is lent for a
// pull and an input waiting aside may be due: one that waits for the turn,
// else a new one. None waits only while every other worker runs a task,
// and a slot may still be free (the puller's): so a run under PerKey may
// have one worker more than MaxAtOnce, never more tasks.
func (e *engine[T, R]) callLentLocked() {
	if !e.pulling || e.starting || !e.lanesDue || e.stopped || e.parked == 0 {
		return
	}
	switch {
	case e.turnWaits > 0:
		e.callTurnLocked()
	case e.limit == 0 || e.workers <= e.limit:
		e.spawn()
	}
}

// takeBackTurnLocked ends a pull for which the turn was lent, and waits
// until the turn is free to take it back. A worker that took it meanwhile
// may be waiting for the pull to end, to pull in its turn or to see the
// source's end: it is woken.
func (e *engine[T, R]) takeBackTurnLocked() {
	e.pulling = false
	if e.jumps && !e.lendAt.IsZero() {
		// On a fake clock the timer is stopped, as no run keeps a timer
		// set that it does not wait for: a test that moves the clock
		// once the run waits on it would take it for one that does.
		e.lendTimer.Stop()
		e.lendAt = time.Time{}
	}
	if e.starting {
		e.room.Broadcast()
		for e.starting {
			e.awaitTurnLocked()
		}
	}
	e.starting = true
}

// pull takes the next input from the source and works out its key,
// recovering a panic of either. It is called with mu unlocked, and
// returns (or ends its goroutine) with mu locked.
func (e *engine[T, R]) pull() (t task[T], id any, ok bool, p *PanicError) {
	returned := false
	defer func() {
		r := recover()
		if returned || r != nil {
			if r != nil {
				p = asPanicError(r) // the key function's, or the sequence's
			}
			e.mu.Lock()
			return
		}
		// The key function called runtime.Goexit (the sequence's comes
		// as a panic: see capturePanics), or panic(nil) under
		// GODEBUG=panicnil=1, which the recover stopped. After a Goexit
		// this goroutine ends here, and its callers' deferred calls
		// unlock mu as it unwinds: stop the run now and take the turn
		// back, as pullLocked would. After a panic(nil), pull returns p.
		p, ok = &PanicError{Value: ErrGoexit, Stack: debug.Stack()}, false
		e.mu.Lock()
		e.panicLocked(p)
		if e.pulling {
			e.takeBackTurnLocked() // next hands it on as this goroutine ends
		}
	}()
	if t.value, t.err, t.index, ok = e.src.pull(); ok && e.keyOf != nil && t.err == nil {
		id = e.keyOf(t.value)
		mustHash(id)
	}
	returned = true
	return t, id, ok, nil
}

// mustHash panics, as a map does, if id cannot be a map key: a key whose
// type is comparable may still hold a slice in an interface. It panics too
// if id is not equal to itself (a NaN, or a struct holding one): no other
// input could share its key, and the key's state could never be swept. pull
// calls it where a panic of the key function is recovered, not later under
// mu.
func mustHash(id any) {
	var m map[any]struct{}
	_ = m[id]
	if id != id {
		panic(fmt.Errorf("trimeter: PerKey: the key %v is not equal to itself", id))
	}
}

// sleepLocked waits for a change that may let a task start: a slot freed, a
// key released, the run stopped, or the clock reaching at (if not zero).
// Its timer is stopped on the way out, even when the clock panics: a timer
// left set would hold up the run's end (shutdown waits for timerFuncs).
func (e *engine[T, R]) sleepLocked(at time.Time) {
	if !at.IsZero() {
		now := e.clock.Now()
		d := at.Sub(now)
		if d <= 0 {
			e.lanesDue = true
			return
		}
		wake := e.timerFuncs.AfterFunc(e.clock, d, func() {
			e.mu.Lock()
			e.lanesDue = true
			e.room.Broadcast()
			e.mu.Unlock()
		})
		e.wake = wake
		defer func() {
			wake.Stop()
			e.wake = nil
		}()
		if e.jumps && !timing.Settle(e.clock, wake, now, d) {
			// The clock moved past at while the timer was set.
			e.lanesDue = true
			return
		}
	}
	e.waitRoomLocked()
}

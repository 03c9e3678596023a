package trimeter

import (
	"context"
	"errors"
	"time"

	"github.com/trimeter-go/trimeter/throttle"
)

// run runs t and hands its result on.
func (e *engine[T, R]) run(t task[T], ps *[]throttle.Permit) {
	v, err := e.call(t, ps)
	if err != nil { // only then: a call here on every task cost 40 ns a task at MaxAtOnce(8)
		e.failSoon(err)
	}
	e.finish(t, v, err)
}

// call makes up to cfg.attempts attempts at t, each admitted through every
// meter (the first one by the starter), and returns the outcome. The task
// keeps its slots throughout, backoff included. An upstream error comes
// back as it is, without calling fn.
func (e *engine[T, R]) call(t task[T], ps *[]throttle.Permit) (R, error) {
	var zero R
	if t.err != nil {
		if end, ok := t.err.(*stageEnded); ok {
			e.abort(end.err)
		}
		return zero, t.err
	}
	v, err := e.attempt(&t, *ps, false)
	var errs []error // the errors of the earlier attempts, once one is retried
	for n := 1; err != nil && n < e.cfg.attempts && retryable(err) && e.retrying(); n++ {
		wait, pushed := pushbackOf(err)
		if !pushed {
			wait = e.cfg.backoff.wait(n)
		}
		if !e.sleep(wait) {
			break
		}
		if aerr := e.readmit(&t, ps); aerr == errStopped {
			break // the run stopped meanwhile: the task ends with its last error
		} else if aerr != nil {
			// A meter failed (or fn's context ended) before the next
			// attempt could start: that ends the task, as it ends a first
			// one.
			return zero, aerr
		}
		errs = append(errs, err)
		v, err = e.attempt(&t, *ps, true)
	}
	switch {
	case err == nil:
		return v, nil
	case errs == nil:
		return zero, err
	}
	return zero, &RetryError{Errs: append(errs, err)}
}

// abort ends the run with err.
func (e *engine[T, R]) abort(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopLocked(err)
}

// attempt calls fn once and tells every permit how it went. A panic in fn
// is recorded, stops the run, and comes back as errPanicked.
//
// The clock (a WithClock clock, the user's code) is read only once the
// settling is deferred: if it panics, the permits are given back all the
// same, and the panic is the run's as fn's would be.
func (e *engine[T, R]) attempt(t *task[T], ps []throttle.Permit, retry bool) (v R, err error) {
	var start time.Time // when timed
	timed, counted, returned := false, false, false
	defer func() {
		// A success is reported only if fn returned it before a failure
		// was signalled (failSoon): after it, it comes from a call the
		// failure cancelled, or from one that ended along with it. The
		// moment fn returned is what counts, read here before the
		// settling, not when the worker gets to finishLocked: a meter's
		// Done may take its time, or another worker may take mu first.
		late := false
		if !returned {
			// fn panicked, or called runtime.Goexit (t.FailNow, say).
			r := recover()
			if r == nil {
				r = ErrGoexit
			}
			e.recordPanic(asPanicError(r))
			err = errPanicked
		} else if err == nil && e.failing.Load() != nil {
			late = true
		}
		// Without permits or a monitor, only a push-back's pause is left
		// to settle, and none matters once the run has stopped. (halted,
		// not e.ctx.Err: this runs deep in a worker's stack, where the
		// channel receive that ctx.Err makes once the context has ended
		// would grow the stack of every call woken by a cancel, in the
		// break's own time.)
		if len(ps) > 0 || counted || (err != nil && !e.halted.Load()) {
			e.settle(t.key, ps, start, timed, counted, err)
		}
		if late { // after the settling: to its meters the call succeeded
			var zero R
			v, err = zero, errLate
		}
	}()
	if e.timed(t.key) {
		start = e.clock.Now()
		timed = true
	}
	if e.mon != nil {
		e.mon.Start(retry)
		counted = true
	}
	v, err = e.fn(e.ctx, t.value)
	returned = true
	return v, err
}

// errLate stands for a success that fn returned after a failure was
// signalled. It ends the task as a failure would, and never reaches the
// caller: failLocked reports the failure signalled first.
var errLate = errors.New("trimeter: the call ended after the run failed")

// timed says whether the permits of key k's attempts are told how long
// they took: they are when a meter the scheduler did not make may use it.
// The scheduler's own rates have no use for it, and reading the clock
// twice per task is a measurable share of a start at high rates.
func (e *engine[T, R]) timed(k *keyState) bool {
	return len(e.meters) > 0 || (k != nil && len(k.meters) > 0)
}

// settle tells the permits of an attempt (how long it took, from start,
// when timed) and, when it counted the attempt's start, the monitor how
// it ended, and starts the pause that a push-back asks for. Both are told
// in deferred calls, the monitor first (a meter's Done may panic): the
// pause and the latency read the clock, which may panic too.
func (e *engine[T, R]) settle(k *keyState, ps []throttle.Permit, start time.Time, timed, counted bool, err error) {
	o := e.outcome(err)
	if len(ps) > 0 {
		defer finish(ps, func(i int) throttle.Outcome {
			po := o
			if _, _, own := e.meterAt(k, i); own {
				po.Pause = 0 // the scheduler keeps its own pauses
			}
			return po
		})
	}
	if counted {
		defer e.mon.Finish(o.Status == throttle.Failed || o.Status == throttle.PushedBack)
	}
	if o.Pause > 0 {
		e.pause(k, o.Pause)
	}
	if len(ps) > 0 && timed {
		o.Latency = e.clock.Since(start)
	}
}

// finish tells each permit of ps how its attempt went, outcome(i) for the
// i-th. A panic or a runtime.Goexit in one permit's Done does not keep the
// others from being done, so that no shared meter loses a permit for
// good: the first panic is raised again once every permit is done, and a
// Goexit goes on once every permit is done.
func finish(ps []throttle.Permit, outcome func(i int) throttle.Outcome) {
	if len(ps) == 1 { // the common case: a Goexit in Done leaves no other permit to do
		if panicked := done(ps[0], outcome(0)); panicked != nil {
			panic(panicked)
		}
		return
	}
	if panicked := finishFrom(ps, 0, outcome); panicked != nil {
		panic(panicked)
	}
}

// finishFrom does the permits of ps from the i-th on, and returns the
// first panic of their Done. When a Done calls runtime.Goexit, its
// deferred call does the rest, in a call of its own: a further Goexit
// ends that call alone, and its own deferred call goes on.
func finishFrom(ps []throttle.Permit, i int, outcome func(i int) throttle.Outcome) (panicked *PanicError) {
	returned := false
	defer func() {
		if !returned { // ps[i]'s Done called runtime.Goexit
			finishFrom(ps, i+1, outcome)
		}
	}()
	for ; i < len(ps); i++ {
		if pe := done(ps[i], outcome(i)); pe != nil && panicked == nil {
			panicked = pe
		}
	}
	returned = true
	return panicked
}

// done calls p.Done(o) and returns what it panicked with, if it did, so
// that one meter's panic does not keep the other meters' permits from
// being done. A panic(nil) under GODEBUG=panicnil=1 counts as a
// runtime.Goexit, as it does in fn.
func done(p throttle.Permit, o throttle.Outcome) (pe *PanicError) {
	returned := false
	defer func() {
		r := recover()
		if r == nil && !returned {
			r = ErrGoexit
		}
		if r != nil {
			pe = asPanicError(r)
		}
	}()
	p.Done(o)
	returned = true
	return nil
}

var errPanicked = &PanicError{Value: "trimeter: a task panicked"}

// outcome says how an attempt that returned err ended, for the meters.
func (e *engine[T, R]) outcome(err error) throttle.Outcome {
	if err == nil {
		return throttle.Outcome{Status: throttle.Succeeded}
	}
	if d, ok := pushbackOf(err); ok {
		return throttle.Outcome{Status: throttle.PushedBack, Pause: d}
	}
	if e.liveErr() != nil && (isContextError(err) || e.isCause(err)) {
		return throttle.Outcome{Status: throttle.Canceled}
	}
	return throttle.Outcome{Status: throttle.Failed}
}

// isCause says whether err is, or wraps, the cause fn's context was
// cancelled with (context.Cause): a call the run cancelled that returns
// what its context reports was cancelled, whether the cause is a failure
// under fail-fast, the parent's cause, or the run's own.
func (e *engine[T, R]) isCause(err error) bool {
	cause := context.Cause(e.ctx)
	return cause != nil && errors.Is(err, cause)
}

// pause holds off new starts for d: those of key k, or of the whole call
// when k is nil. A shorter pause never shortens a longer one.
func (e *engine[T, R]) pause(k *keyState, d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	until := e.clock.Now().Add(d)
	if k != nil {
		k.pausedUntil = later(k.pausedUntil, until)
		return
	}
	e.pausedUntil = later(e.pausedUntil, until)
	if e.mon != nil {
		e.mon.SetPause(e.pausedUntil)
	}
}

// retrying says whether a task may make another attempt: the run has not
// stopped and is not about to (stopping: a failure signalled, or the
// parent's Done closed, which the run's own contexts hear of a moment
// later), and fn's context has not ended.
func (e *engine[T, R]) retrying() bool {
	return !e.stopping() && e.liveErr() == nil
}

// readmit admits a retry: it waits out the pauses in force for the task's
// key and the call, then takes every meter's permit again. It returns
// errStopped when the run stopped meanwhile.
func (e *engine[T, R]) readmit(t *task[T], ps *[]throttle.Permit) error {
	if wait := e.pausedFor(t.key); wait > 0 && !e.sleep(wait) {
		return errStopped
	}
	if !e.retrying() {
		return errStopped
	}
	_, err := e.admitUnpaused(t, ps, false)
	return err
}

// admitUnpaused admits t as admit does, and again after waiting out a
// push-back pause that began while it waited for a meter: a task does not
// start while a pause is in force. A first attempt without a meter waited
// for nothing since the starter looked at the pause, and skips the look.
// On a first attempt, a pause of t's key that outlasts the call's is not
// waited out here, by the starter, which would hold up every other key:
// the permits go back, and the wait is returned, for the input to wait
// aside as it does for a key's meter.
func (e *engine[T, R]) admitUnpaused(t *task[T], ps *[]throttle.Permit, first bool) (time.Duration, error) {
	for {
		wait, err := e.admit(t, ps, first)
		if err != nil || wait > 0 || (first && len(*ps) == 0) {
			return wait, err
		}
		call, key := e.pausesLeft(t.key)
		if call <= 0 && key <= 0 {
			return 0, nil
		}
		release(*ps, throttle.Unused) // a push-back came in meanwhile
		if first && key > 0 && key >= call {
			*ps = (*ps)[:0]
			return key, nil
		}
		if !e.sleep(max(call, key)) {
			return 0, errStopped
		}
	}
}

// pausedFor returns how long the pauses of key k and of the call last.
func (e *engine[T, R]) pausedFor(k *keyState) time.Duration {
	call, key := e.pausesLeft(k)
	return max(call, key)
}

// pausesLeft returns how long the call's pause and key k's last from now,
// each zero or less when none is in force.
func (e *engine[T, R]) pausesLeft(k *keyState) (call, key time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pausedUntil.IsZero() && (k == nil || k.pausedUntil.IsZero()) {
		return 0, 0
	}
	now := e.clock.Now()
	if !e.pausedUntil.IsZero() {
		call = e.pausedUntil.Sub(now)
	}
	if k != nil && !k.pausedUntil.IsZero() {
		key = k.pausedUntil.Sub(now)
	}
	return call, key
}

// liveErr says why the run's own waits end, or nil while they go on: the
// run stopped (live), or fn's context ended. live ends with fn's context,
// but a moment after its Done is closed, when the parent's end or a stop
// cancels it; a call that saw it done may have returned already.
func (e *engine[T, R]) liveErr() error {
	if err := e.ctx.Err(); err != nil {
		return err
	}
	return e.live.Err()
}

// sleep waits for d on the call's clock. It returns false if the run
// stopped first: live ended, or the parent's Done closed, which live hears
// of a moment later (or, from a parent the context package does not know,
// whenever that parent tells it).
func (e *engine[T, R]) sleep(d time.Duration) bool {
	if d <= 0 {
		return e.liveErr() == nil && !e.parentEnded()
	}
	tm := e.clock.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.Chan():
		return true
	case <-e.live.Done():
		return false
	case <-e.parentEnd: // nil when the parent cannot end
		return false
	}
}

// release tells every permit of ps that its attempt ended with status s,
// as finish does.
func release(ps []throttle.Permit, s throttle.Status) {
	finish(ps, func(int) throttle.Outcome { return throttle.Outcome{Status: s} })
}

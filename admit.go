package trimeter

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/trimeter-go/trimeter/throttle"
)

// The meters an attempt passes, in order: first those that are not a
// throttle.Trier (the call's shared meters, then the key's), which are
// waited for in their Acquire; then, at one instant, those that answer at
// once: the scheduler's own rates (the key's and the call's MaxPerSecond),
// then the shared meters of package throttle (the key's, then the call's),
// then the other shared meters (the key's, then the call's). So no permit
// of a meter that answers at once (a rate's token) is held while the
// attempt waits in another's Acquire; and the meters that take back a
// permit given back unused exactly are asked before those that may not (a
// rate kept in Redis loses the token), a key's before the call's, since a
// key turns inputs away most often (they then wait aside). sortMeters puts
// the meters of e.meters and of each key's in those classes and counts
// them. meterAt returns the i-th meter for key k, and whether it belongs
// to the key and whether the scheduler made it (its pauses are then kept
// by the scheduler, not by the meter).
func (e *engine[T, R]) meterAt(k *keyState, i int) (m throttle.Meter, ofKey, own bool) {
	if i < e.blocking {
		return e.meters[i], false, false
	}
	i -= e.blocking
	var km []throttle.Meter
	kb, kx := 0, 0
	if k != nil {
		km, kb, kx = k.meters, k.blocking, k.exact
		if i < kb {
			return km[i], true, false
		}
		i -= kb
		if k.rate != nil {
			if i == 0 {
				return k.rate, true, true
			}
			i--
		}
	}
	if e.rate != nil {
		if i == 0 {
			return e.rate, false, true
		}
		i--
	}
	if i < kx {
		return km[kb+i], true, false
	}
	i -= kx
	if i < e.exact {
		return e.meters[e.blocking+i], false, false
	}
	i -= e.exact
	n := len(km) - kb - kx
	if i < n {
		return km[kb+kx+i], true, false
	}
	return e.meters[e.blocking+e.exact+i-n], false, false
}

// Classes of meters, in the order an attempt asks them (see meterAt).
const (
	blockingMeter = iota // not a throttle.Trier: waited for in its Acquire
	exactMeter           // of package throttle: takes back an unused permit exactly
	otherMeter
)

func meterClass(m throttle.Meter) int {
	switch m.(type) {
	case *throttle.Rate, *throttle.Concurrency, *throttle.Adaptive:
		return exactMeter
	}
	if isTrier(m) {
		return otherMeter
	}
	return blockingMeter
}

// sortMeters returns ms ordered by class, each class in the order given,
// and how many are blocking and exact.
func sortMeters(ms []throttle.Meter) (out []throttle.Meter, blocking, exact int) {
	byClass := func(a, b throttle.Meter) int { return meterClass(a) - meterClass(b) }
	out = ms // most often in order already: one meter, say
	if !slices.IsSortedFunc(ms, byClass) {
		out = slices.Clone(ms)
		slices.SortStableFunc(out, byClass)
	}
	for _, m := range out {
		switch meterClass(m) {
		case blockingMeter:
			blocking++
		case exactMeter:
			exact++
		}
	}
	return out, blocking, exact
}

func (e *engine[T, R]) meterCount(k *keyState) int {
	n := len(e.meters)
	if e.rate != nil {
		n++
	}
	if k != nil {
		n += len(k.meters)
		if k.rate != nil {
			n++
		}
	}
	return n
}

// admit takes t's permits from every meter into *ps, all at one instant,
// so that a rate meter's token is spent when the task starts, never while
// it waits for another meter. Meters that cannot answer at once (they are
// not a throttle.Trier) come first (meterAt), and are waited for in order,
// in their Acquire.
//
// When a meter that answers at once is not ready, the task gives back the
// permits taken from such meters, keeps those of the meters that cannot,
// waits for that meter alone (through its Acquire, on its own clock, so it
// keeps its place in that meter's line), keeps the permit it got, and tries
// the others again. On a first attempt a key's meter that is not ready
// makes admit give back every permit and return its wait instead, so that
// the starter can set the input aside and start another key's.
//
// When the run stopped while the meters were asked (an answer, a failure
// or the parent's end that mu has not recorded yet), the permits are given
// back unused and admit returns errStopped: the task does not start.
func (e *engine[T, R]) admit(t *task[T], ps *[]throttle.Permit, first bool) (time.Duration, error) {
	n := e.meterCount(t.key)
	*ps = (*ps)[:0]
	if n == 0 {
		return 0, nil
	}
	if n == 1 && e.rate != nil && !e.jumps { // no other meter: not e.meters, nor a key's
		// The run's own rate alone on the real clock, the common case:
		// a meter of this package that reads no clock of the user's
		// (which might panic), so that nothing in TryAcquire panics or
		// blocks, asked without tryAll's guard. When it gives no token,
		// or an error, the loop below asks again, and waits or returns
		// the error.
		if p, _, _ := e.rate.TryAcquire(e.live); p != nil {
			*ps = append(*ps, p)
			return 0, e.admitted(ps, nil)
		}
	}
	kept := 0 // permits of meters that cannot answer at once, kept while the task waits
	held, heldP := -1, throttle.Permit(nil)
	for {
		*ps = (*ps)[:kept]
		blocked, wait, err := e.tryAll(t.key, n, held, heldP, ps)
		if blocked < 0 {
			return 0, e.admitted(ps, err)
		}
		if _, ofKey, _ := e.meterAt(t.key, blocked); err != nil || (ofKey && first) {
			e.giveBack(*ps, heldP, held, blocked)
			*ps = (*ps)[:0]
			if err != nil {
				return 0, err
			}
			if wait <= 0 {
				wait = keyPoll // the meter cannot say how long
			}
			return wait, nil
		}
		kept = min(e.blockingCount(t.key), blocked)
		if heldP, err = e.awaitKeeping(t.key, ps, kept, heldP, held, blocked); err != nil {
			release(*ps, throttle.Unused)
			*ps = (*ps)[:0]
			return 0, err
		}
		held = blocked
	}
}

// admitted ends an admission that took every permit into *ps: err, from
// a meter's guard, or the run stopping meanwhile gives them back unused,
// and the task does not start (errStopped).
func (e *engine[T, R]) admitted(ps *[]throttle.Permit, err error) error {
	if err != nil || e.stopping() {
		release(*ps, throttle.Unused)
		*ps = (*ps)[:0]
		return errStopped
	}
	return nil
}

// awaitKeeping gives back the permits of *ps from kept on (and heldP, the
// held-th meter's, when it is not among them), leaving *ps with the first
// kept, and waits for the blocked-th meter alone. A panic or a
// runtime.Goexit in a meter gives the kept permits back too, as tryAll
// does, and so does a panic(nil) under GODEBUG=panicnil=1, which
// giveBackOnExit stops: then *ps is left empty and err is errStopped.
func (e *engine[T, R]) awaitKeeping(k *keyState, ps *[]throttle.Permit, kept int, heldP throttle.Permit, held, blocked int) (p throttle.Permit, err error) {
	rest := (*ps)[kept:]
	*ps = (*ps)[:kept]
	returned, exited := false, false
	defer func() {
		if exited {
			p, err = nil, errStopped
		}
	}()
	defer e.giveBackOnExit(&returned, &exited, ps, nil, -1)
	e.giveBack(rest, heldP, held, blocked)
	p, err = e.await(k, blocked)
	returned = true
	return p, err
}

// blockingCount returns how many meters of key k cannot answer at once:
// the first ones in meterAt's order.
func (e *engine[T, R]) blockingCount(k *keyState) int {
	if k == nil {
		return e.blocking
	}
	return e.blocking + k.blocking
}

// tryAll takes a permit from each of the n meters of key k in turn into
// ps, from the first whose permit ps does not hold yet, without waiting
// for those that answer at once; the held-th meter's permit, heldP, is
// taken already. It stops at the first meter that refuses, returning its
// index and the wait it asked for (or its error); blocked is -1 when all
// gave a permit. On a panic or a Goexit in a meter, every permit in ps is
// given back. A panic(nil) under GODEBUG=panicnil=1 looks like a Goexit
// to the recover that stops it; after it, tryAll returns -1 and
// errStopped, with ps empty.
func (e *engine[T, R]) tryAll(k *keyState, n, held int, heldP throttle.Permit, ps *[]throttle.Permit) (blocked int, wait time.Duration, err error) {
	returned, exited := false, false
	defer func() {
		if exited {
			blocked, wait, err = -1, 0, errStopped
		}
	}()
	defer e.giveBackOnExit(&returned, &exited, ps, heldP, held)
	blocked, wait, err = e.tryEach(k, n, held, heldP, ps)
	returned = true
	return blocked, wait, err
}

// giveBackOnExit, deferred by a call that asks meters, does nothing once
// that call has returned. Otherwise a meter panicked or called
// runtime.Goexit: it gives back the permits of *ps (and heldP, the
// held-th meter's, when it is not among them), so that a shared meter
// does not lose them for good, and lets the panic (with the stack where
// it happened) or the Goexit go on. The meter's panic came first: a panic
// of a Done in the give-back does not replace it.
//
// A recover that finds nothing means a Goexit, or a panic(nil) under
// GODEBUG=panicnil=1, which that recover has stopped. The run records it
// as a Goexit, *ps is left empty, so that the caller, which returns after
// all in the second case, does not give those permits back again, and
// *exited tells it so.
func (e *engine[T, R]) giveBackOnExit(returned, exited *bool, ps *[]throttle.Permit, heldP throttle.Permit, held int) {
	if *returned {
		return
	}
	r := recover()
	if r == nil {
		*exited = true
		e.recordPanic(asPanicError(ErrGoexit))
		e.giveBack(*ps, heldP, held, len(*ps))
		*ps = (*ps)[:0]
		return
	}
	// Recorded first, so that a Goexit in a Done cannot lose it.
	pe := asPanicError(r)
	e.recordPanic(pe)
	func() {
		defer func() { _ = recover() }()
		e.giveBack(*ps, heldP, held, len(*ps))
	}()
	panic(pe)
}

// tryEach is tryAll without its guard.
func (e *engine[T, R]) tryEach(k *keyState, n, held int, heldP throttle.Permit, ps *[]throttle.Permit) (blocked int, wait time.Duration, err error) {
	for i := len(*ps); i < n; i++ { // the permits in ps already are kept
		p := heldP
		if i != held {
			m, _, _ := e.meterAt(k, i)
			if p, wait, err = try(e, m); err != nil || p == nil {
				return i, wait, err
			}
		}
		*ps = append(*ps, p)
	}
	return -1, 0, nil
}

// await waits for the i-th meter of key k alone, through its Acquire.
func (e *engine[T, R]) await(k *keyState, i int) (throttle.Permit, error) {
	m, _, _ := e.meterAt(k, i)
	if e.mon != nil {
		e.mon.Wait(1)
		defer e.mon.Wait(-1)
	}
	return acquire(e.live, m)
}

// acquire waits in m's Acquire. A nil permit with no error breaks the
// Meter contract: the attempt has no permit to run on, so it panics, as
// a meter's own panic does, naming the meter; the caller's guard gives the
// attempt's other permits back and stops the run.
func acquire(ctx context.Context, m throttle.Meter) (throttle.Permit, error) {
	p, err := m.Acquire(ctx)
	if p == nil && err == nil {
		panic(&PanicError{
			Value: fmt.Errorf("trimeter: %T.Acquire returned a nil permit and no error", m),
			Stack: debug.Stack(),
		})
	}
	return p, err
}

// giveBack returns the permits taken before meter i failed: those in ps,
// and the held one if it comes after i (and so is not in ps yet).
func (e *engine[T, R]) giveBack(ps []throttle.Permit, heldP throttle.Permit, held, i int) {
	if held > i {
		ps = append(slices.Clip(ps), heldP)
	}
	release(ps, throttle.Unused)
}

// try asks m for a permit without waiting when it can; a meter that cannot
// is waited for, and the wait counts in the monitor's Waiting.
func try[T, R any](e *engine[T, R], m throttle.Meter) (throttle.Permit, time.Duration, error) {
	if tr, ok := m.(throttle.Trier); ok {
		return tr.TryAcquire(e.live)
	}
	if e.mon != nil {
		e.mon.Wait(1)
		defer e.mon.Wait(-1)
	}
	p, err := acquire(e.live, m)
	return p, 0, err
}

func isTrier(m throttle.Meter) bool {
	_, ok := m.(throttle.Trier)
	return ok
}

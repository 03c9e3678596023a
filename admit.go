package trimeter

import (
	"slices"
	"time"

	"github.com/trimeter-go/trimeter/throttle"
)

// The meters an attempt passes, in order: first those that are not a
// throttle.Trier (the call's shared meters, then the key's), which are
// waited for in their Acquire; then the rest at one instant: the call's
// shared meters (WithMeter), the call's rate (MaxPerSecond), the key's
// shared meters and the key's rate. So no permit of a meter that answers
// at once (a rate's token) is held while the attempt waits in another's
// Acquire. (blockingFirst puts the meters that are not a Trier first in
// e.meters and in each key's, and counts them.) meterAt returns the i-th
// of them for key k, and whether it belongs to the key and whether the
// scheduler made it (its pauses are then kept by the scheduler, not by the
// meter).
func (e *engine[T, R]) meterAt(k *keyState, i int) (m throttle.Meter, ofKey, own bool) {
	if i < e.blocking {
		return e.meters[i], false, false
	}
	i -= e.blocking
	if k != nil {
		if i < k.blocking {
			return k.meters[i], true, false
		}
		i -= k.blocking
	}
	if i < len(e.meters)-e.blocking {
		return e.meters[e.blocking+i], false, false
	}
	i -= len(e.meters) - e.blocking
	if e.rate != nil {
		if i == 0 {
			return e.rate, false, true
		}
		i--
	}
	if i < len(k.meters)-k.blocking {
		return k.meters[k.blocking+i], true, false
	}
	return k.rate, true, true
}

// blockingFirst returns ms with the meters that are not a throttle.Trier
// first, each part in the order given, and how many those are.
func blockingFirst(ms []throttle.Meter) ([]throttle.Meter, int) {
	if !slices.ContainsFunc(ms, func(m throttle.Meter) bool { return !isTrier(m) }) {
		return ms, 0 // the common case: every meter answers at once
	}
	out := make([]throttle.Meter, 0, len(ms))
	for _, m := range ms {
		if !isTrier(m) {
			out = append(out, m)
		}
	}
	n := len(out)
	for _, m := range ms {
		if isTrier(m) {
			out = append(out, m)
		}
	}
	return out, n
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
// it waits for another meter. Meters that cannot answer at once
// (throttle.Trier) are waited for in order.
//
// When a meter is not ready, the permits taken so far are given back, the
// task waits for that meter alone (through its Acquire, on its own clock),
// keeps the permit it got, and tries the others again. When another of its
// meters is not a throttle.Trier, though, asking that one means waiting in
// its Acquire: the task then holds nothing while it waits, but sleeps for
// the wait the meter that was not ready gave, and asks them all again. On a first attempt
// a key's meter that is not ready makes admit return its wait instead, so
// that the starter can set the input aside and start another key's.
//
// When the run stopped while the meters were asked (an answer, a failure
// or the parent's end that mu has not recorded yet), the permits are given
// back unused and admit returns errStopped: the task does not start.
func (e *engine[T, R]) admit(t *task[T], ps *[]throttle.Permit, first bool) (time.Duration, error) {
	n := e.meterCount(t.key)
	if n == 0 {
		*ps = (*ps)[:0]
		return 0, nil
	}
	held, heldP := -1, throttle.Permit(nil)
	for {
		*ps = (*ps)[:0]
		blocked, wait, err := e.tryAll(t.key, n, held, heldP, ps)
		if blocked < 0 {
			if e.stopping() {
				release(*ps, throttle.Unused)
				*ps = (*ps)[:0]
				return 0, errStopped
			}
			return 0, nil
		}
		e.giveBack(*ps, heldP, held, blocked)
		if err != nil {
			return 0, err
		}
		if _, ofKey, _ := e.meterAt(t.key, blocked); ofKey && first {
			if wait <= 0 {
				wait = keyPoll // the meter cannot say how long
			}
			return wait, nil
		}
		if e.blocksInAcquire(t.key, n) {
			// A meter of t's cannot be asked without waiting, and t
			// would wait in it holding this meter's permit (a rate's
			// token, spent long before t starts): t waits out this
			// meter's wait on the call's clock instead, holding nothing,
			// and asks every meter again.
			if wait <= 0 {
				wait = keyPoll // the meter cannot say how long
			}
			if !e.sleep(wait) {
				return 0, e.ctx.Err()
			}
			held, heldP = -1, nil
			continue
		}
		if heldP, err = e.await(t.key, blocked); err != nil {
			return 0, err
		}
		held = blocked
	}
}

// blocksInAcquire says whether one of the n meters of key k is not a
// throttle.Trier: asking it means waiting in its Acquire.
func (e *engine[T, R]) blocksInAcquire(k *keyState, n int) bool {
	for i := range n {
		if m, _, _ := e.meterAt(k, i); !isTrier(m) {
			return true
		}
	}
	return false
}

func isTrier(m throttle.Meter) bool {
	_, ok := m.(throttle.Trier)
	return ok
}

// tryAll takes a permit from each of the n meters of key k in turn into
// ps, without waiting; the held-th meter's permit, heldP, is taken already.
// It stops at the first meter that refuses, returning its index and the
// wait it asked for (or its error); blocked is -1 when all gave a permit.
func (e *engine[T, R]) tryAll(k *keyState, n, held int, heldP throttle.Permit, ps *[]throttle.Permit) (blocked int, wait time.Duration, err error) {
	returned := false
	defer func() {
		if returned {
			return
		}
		// A meter panicked or called runtime.Goexit: give back the
		// permits taken so far, so that a shared meter does not lose them
		// for good, and let the panic (with the stack where it happened)
		// or the Goexit go on. The meter's panic came first: a panic of a
		// Done in the give-back does not replace it.
		r := recover()
		if r == nil {
			e.giveBack(*ps, heldP, held, len(*ps))
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
	}()
	blocked, wait, err = e.tryEach(k, n, held, heldP, ps)
	returned = true
	return blocked, wait, err
}

// tryEach is tryAll without its guard.
func (e *engine[T, R]) tryEach(k *keyState, n, held int, heldP throttle.Permit, ps *[]throttle.Permit) (blocked int, wait time.Duration, err error) {
	for i := 0; i < n; i++ {
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
	return m.Acquire(e.ctx)
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
		return tr.TryAcquire(e.ctx)
	}
	if e.mon != nil {
		e.mon.Wait(1)
		defer e.mon.Wait(-1)
	}
	p, err := m.Acquire(e.ctx)
	return p, 0, err
}

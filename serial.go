package trimeter

import "github.com/trimeter-go/trimeter/throttle"

// With MaxAtOnce(1) and no PerKey, one task runs at a time, and the next
// input may be pulled only once the previous task's slot is free: no two
// workers ever take turns at the source. The one worker then ranges over
// the input sequence itself, running each task as the sequence yields its
// input, instead of pulling inputs through iter.Pull's coroutine. Every
// guarantee is the same; only the coroutine switches are saved. With a
// consumer, its results mostly go straight to it through a channel
// (handoff.go).

// serial says whether the run takes this path.
func (e *engine[T, R]) serial() bool { return e.limit == 1 && e.keyOf == nil }

// serve runs the whole run in the calling goroutine, ranging over the
// inputs and running each task as it comes.
func (e *engine[T, R]) serve() {
	var ps []throttle.Permit
	if e.handoff != nil {
		e.serveHanded(&ps)
		return
	}
	e.rangeInputs(func(t task[T]) bool { return e.runNow(t, &ps) })
}

// runNow admits and runs t on the slot reserved for it, then, under one
// lock, hands its result on and reserves a slot for the next input. It
// returns false when the run has stopped.
func (e *engine[T, R]) runNow(t task[T], ps *[]throttle.Permit) bool {
	v, err, ok := e.callNow(t, ps)
	if !ok {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reserved = false
	e.finishLocked(t, v, err)
	return e.reserveLocked()
}

// callNow admits and runs t, unless the run stops first: then ok is false.
func (e *engine[T, R]) callNow(t task[T], ps *[]throttle.Permit) (v R, err error, ok bool) {
	// The input waits for the call's push-back pause. Only this goroutine's
	// tasks set one, so pausedUntil is read here without mu while none has.
	if t.err == nil && !e.pausedUntil.IsZero() && !e.waitPause() {
		return v, nil, false // the run stopped: rangeInputs gives the slot back
	}
	if e.stopping() {
		// The run stopped, or is about to (a break, the parent's end or a
		// failure) while the sequence produced t: t does not start.
		return v, nil, false
	}
	if t.err == nil { // an upstream error passes by every meter
		_, err = e.admit(&t, ps, true)
	}
	if err == nil {
		v, err = e.call(t, ps)
	}
	return v, err, true
}

// waitPause waits until the call's push-back pause, if one is in force, has
// ended. It returns false when the run has stopped meanwhile.
func (e *engine[T, R]) waitPause() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.waitPauseLocked()
	return !e.stopped
}

package trimeter

// Ranging over the inputs from one goroutine: the serial worker (serial.go)
// and the feeder (feeder.go) both do it. A slot is taken before each
// input is pulled, so inputs are pulled only when a task can start, as on
// the starter's path.

// rangeInputs ranges over e.in, handing each input, on the slot taken for
// it, to hand, until the sequence ends, hand returns false or the run
// stops. hand must take another slot (reserveLocked) before it returns
// true. A panic of the sequence is recovered here, with its stack, and
// stops the run, as a runtime.Goexit does; returning false from the
// sequence's yield runs its own cleanup.
func (e *engine[T, R]) rangeInputs(hand func(task[T]) bool) {
	returned := false
	defer func() {
		r := recover()
		if r == nil && !returned {
			r = ErrGoexit // the sequence called runtime.Goexit
		}
		if r != nil {
			e.recordPanic(asPanicError(r))
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		e.unreserveLocked()
		e.endInputsLocked()
	}()
	e.mu.Lock()
	ok := e.reserveLocked()
	e.mu.Unlock()
	if ok {
		e.in.each(hand)
	}
	returned = true
}

// reserveLocked waits until a slot is free and takes it for the input the
// sequence will produce next. It returns false when the run has stopped.
//
// The call's push-back pause holds up starts, not pulls: the input pulled
// on this slot waits for the pause before it starts (enqueue, runNow), so
// that a sequence that has ended ends the run at once, not when the pause
// is over.
func (e *engine[T, R]) reserveLocked() bool {
	for !e.stoppedLocked() {
		if !e.hasRoom() {
			e.waitRoomLocked()
			continue
		}
		e.open++
		e.running++
		e.reserved = true
		return true
	}
	return false
}

// waitPauseLocked waits until the call's push-back pause, if one is in
// force, has ended or the run has stopped.
func (e *engine[T, R]) waitPauseLocked() {
	for !e.stopped && e.pausedLocked() {
		e.sleepLocked(e.pausedUntil)
	}
}

// pausedLocked says whether the call's push-back pause is in force. It
// reads the clock only when there has been a pause.
func (e *engine[T, R]) pausedLocked() bool {
	return !e.pausedUntil.IsZero() && e.clock.Now().Before(e.pausedUntil)
}

// unreserveLocked gives back the slot reserved for an input that was never
// handed on, if there is one.
func (e *engine[T, R]) unreserveLocked() {
	if e.reserved {
		e.reserved = false
		e.open--
		e.running--
	}
}

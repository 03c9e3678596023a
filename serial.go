package trimeter

import (
	"time"

	"github.com/trimeter-go/trimeter/throttle"
)

// With MaxAtOnce(1) and no PerKey, one task runs at a time, and the next
// input may be pulled only once the previous task's slot is free: no two
// workers ever take turns at the source. The one worker then ranges over
// the input sequence itself, running each task as the sequence yields its
// input, instead of pulling inputs through iter.Pull's coroutine. Every
// guarantee is the same; only the coroutine switches are saved.

// serial says whether the run takes this path.
func (e *engine[T, R]) serial() bool { return e.limit == 1 && e.keyOf == nil }

// serve runs the whole run in the calling goroutine, ranging over e.seq. A
// panic of the sequence is recovered here, with its stack, and stops the
// run; returning false from the sequence's yield runs its own cleanup.
func (e *engine[T, R]) serve() {
	var ps []throttle.Permit
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
		e.pulledAll = true
		if e.open == 0 {
			e.wakeConsumerLocked()
		}
	}()
	index := 0
	for v, err := range e.seq {
		t := task[T]{index: index, value: v, err: err}
		index++
		if !e.startOne(&t, &ps) {
			break
		}
		if !e.awaitRoom() {
			break
		}
	}
	returned = true
}

// startOne starts and runs t once a pause in force has passed. It returns
// false when the run has stopped.
func (e *engine[T, R]) startOne(t *task[T], ps *[]throttle.Permit) bool {
	e.mu.Lock()
	for !e.stopped && !e.pausedUntil.IsZero() && e.clock.Now().Before(e.pausedUntil) {
		e.sleepLocked(e.pausedUntil)
	}
	if e.stopped {
		e.mu.Unlock()
		return false
	}
	e.takeLocked(t)
	e.mu.Unlock()
	if t.err == nil {
		if _, err := e.admit(t, ps, true); err != nil {
			e.unstart(*t, err)
			return true
		}
	}
	e.run(*t, ps)
	return true
}

// awaitRoom waits until the next task may take the slot. It returns false
// when the run has stopped.
func (e *engine[T, R]) awaitRoom() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for !e.stopped && !e.hasRoom() {
		e.sleepLocked(time.Time{})
	}
	return !e.stopped
}

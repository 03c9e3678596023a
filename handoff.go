package trimeter

import "github.com/trimeter-go/trimeter/throttle"

// When the serial worker (serial.go) has a consumer, its results go to the
// consumer through a channel as long as BufferSize, rather than through the
// outbox, its lock and the wake-ups of both sides: a send to a receiver
// that waits hands the result over and wakes it in one step. The window
// is the channel's: the worker, blocked in a send with its finished
// result, holds the last slot of it, and pulls the next input only once
// that result is in the channel. The result of a task that ends with an
// error, or that stops the run, goes the slow way under mu, as
// finishLocked decides, and then through the channel too.
//
// The worker closes the channel once it will hand nothing more on: when
// the input sequence has ended, and when the run has stopped (before it
// lets the sequence return, which may wait for the loop body). The
// consumer's receive sees the close, or a stopped run, and the stream
// goes on as it does with the outbox. shutdown drains the channel, so that
// a worker blocked in a send after a break can return.

// maxHandoff is the largest BufferSize that a handoff channel is made for:
// its buffer is allocated at once, where the outbox grows only as results
// wait.
const maxHandoff = 64

// handsOver says whether the run's results go through a handoff channel.
func (e *engine[T, R]) handsOver() bool {
	return e.serial() && e.mode == toConsumer && e.window-e.limit <= maxHandoff
}

// serveHanded is serve when the results go through the handoff channel.
func (e *engine[T, R]) serveHanded(ps *[]throttle.Permit) {
	open := true
	defer func() {
		if open {
			close(e.handoff) // after rangeInputs recorded how the input ended
		}
	}()
	e.rangeInputs(func(t task[T]) bool {
		if e.runHanded(t, ps) {
			return true
		}
		open = false
		close(e.handoff)
		return false
	})
}

// runHanded runs t and hands its result to the consumer, and says whether
// the next input may be pulled. The slot reserved for t passes to the
// next input as it is: the channel bounds the window, not the counts.
func (e *engine[T, R]) runHanded(t task[T], ps *[]throttle.Permit) bool {
	v, err, ok := e.callNow(t, ps)
	if !ok {
		return false
	}
	if err != nil || e.cfg.untilSuccess || e.stopping() {
		e.mu.Lock()
		// A result that stopped the run (RunAny's answer) goes out only if
		// the stop lets the results out, as receive would let it out of
		// the outbox.
		delivered := e.endTaskLocked(t, err) && (!e.stopped || e.drainingLocked())
		e.mu.Unlock()
		if !delivered {
			return false // the run stopped
		}
	}
	e.handoff <- result[T, R]{index: t.index, in: t.value, val: v, err: err}
	return !e.stopping()
}

// receiveHanded is receive when the results come through the handoff
// channel. A stop the consumer can know of (its own cancel of the parent,
// say) is seen before the next result is taken, as receive sees it; a
// result the worker sent before it saw a stop that came meanwhile goes
// out, as having been taken before it.
func (e *engine[T, R]) receiveHanded() (r result[T, R], ok bool) {
	if e.stopping() {
		e.mu.Lock()
		ended := e.stoppedLocked() && !e.drainingLocked()
		e.mu.Unlock()
		if ended {
			return r, false
		}
	}
	r, ok = <-e.handoff
	return r, ok
}

package trimeter

import (
	"unsafe"

	"github.com/trimeter-go/trimeter/throttle"
)

// When the serial worker (serial.go) has a consumer, its results go to the
// consumer through a channel as long as BufferSize, rather than through the
// outbox, its lock and the wake-ups of both sides: a send to a receiver
// that waits hands the result over and wakes it in one step. The window
// is the channel's: the worker, blocked in a send with its finished
// result, holds the last slot of it, and pulls the next input only once
// that result is in the channel. A success while the run goes on takes no
// lock; any other ending (an error, RunAny's answer, a stop) is decided
// under mu as finishLocked decides it (endTaskLocked), and a result that
// still goes out then goes through the channel too. The counts of slots
// (open, running, reserved) stay as rangeInputs first set them: one slot,
// reserved, which passes from each input to the next.
//
// The worker closes the channel once it will hand nothing more on: when
// the input sequence has ended, and when the run has stopped (before it
// lets the sequence return, which may wait for the loop body), so that a
// failure reaches the loop once the call has returned, as awaitFailure
// has it. The consumer's receive sees the close, or a stopped run, and
// the stream goes on as it does with the outbox. shutdown drains the
// channel, so that a worker blocked in a send after a break can return.

// The channel carries a pointer to each result, not the result itself: a
// channel's element must take less than 64 KiB, which a result (an input
// and a value of the caller's types) need not, and a channel of results
// would keep such a call from compiling at all. The results are kept in
// places taken in turn, BufferSize + 2 of them, so that the worker never
// fills a place the consumer may still be reading: the worker fills the
// next place only once its last send is done, when every result but the
// last BufferSize sent has been taken, and the consumer empties a place
// before it takes the next result. So of the results in places, at most
// BufferSize are in the channel, one is with the worker and one may be
// being read. A goroutine that takes results to drop them
// (dropHandedLocked, shutdown) reads no place; it takes them only once
// the run has stopped, and a send that it lets through is followed by no
// other.

// A handoff channel's buffer and places are allocated at once, where the
// outbox grows only as results wait: they are made for a BufferSize of at
// most maxHandoff, whose BufferSize + 2 places take at most
// maxHandoffBytes in all.
const (
	maxHandoff      = 64
	maxHandoffBytes = 8 << 10
)

// handsOver says whether the run's results go through a handoff channel.
func (e *engine[T, R]) handsOver() bool {
	if !e.serial() || e.mode != toConsumer {
		return false
	}
	n := e.window - e.limit // BufferSize
	return n <= maxHandoff && uintptr(n+2)*unsafe.Sizeof(result[T, R]{}) <= maxHandoffBytes
}

// makeHandoff makes the handoff channel for a BufferSize of n, and its
// places.
func (e *engine[T, R]) makeHandoff(n int) {
	e.handoff = make(chan *result[T, R], n)
	e.handed = make([]result[T, R], n+2)
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
	if (err != nil || e.cfg.untilSuccess || e.stopping()) && !e.endHanded(t, err) {
		return false // the run stopped
	}
	return e.send(t, v, err)
}

// endHanded is endTaskLocked for a task whose result would go through the
// handoff channel, and says whether it still goes out. A stop that the
// call itself made (a cancel of the parent, say) comes before its result,
// as receive sees it before it takes a result from the outbox; and a
// result that stopped the run (RunAny's answer) goes out only if the stop
// lets results out.
func (e *engine[T, R]) endHanded(t task[T], err error) bool {
	e.mu.Lock()
	defer e.mu.Unlock() // stoppedLocked may call the parent's Err, which may panic
	e.stoppedLocked()
	return e.endTaskLocked(t, err) && e.handsOutLocked()
}

// send hands t's result to the consumer, waiting while the window is
// full, and says whether the next input may be pulled. A send that waits
// is not left waiting by a stop that drops the results: dropHandedLocked
// takes them.
func (e *engine[T, R]) send(t task[T], v R, err error) bool {
	r := &e.handed[e.handedAt]
	*r = result[T, R]{index: t.index, in: t.value, val: v, err: err}
	if e.handedAt++; e.handedAt == len(e.handed) {
		e.handedAt = 0
	}
	e.handoff <- r
	return !e.stopping()
}

// dropHandedLocked takes what the worker hands on from now on, once the
// run has stopped in a way that drops the results not yet delivered (not
// a failure's or RunAny's stop, which hand them out first), until the
// worker closes the channel. A worker blocked in a send with the window
// full then goes on at once, sees the stop and lets the input sequence
// return, rather than when the loop body comes back for a result; a
// receive would wait in a select beside the stop, which costs every
// result more than the whole handoff otherwise does. The consumer takes
// no result once it sees the stop (receiveHanded); one it was already
// waiting for may still reach it, as a result that finished before the
// stop.
func (e *engine[T, R]) dropHandedLocked() {
	e.wg.Add(1) // the worker's own count is held, or shutdown has not begun to wait
	go func() {
		defer e.wg.Done()
		for range e.handoff {
		}
	}()
}

// receiveHanded is receive when the results come through the handoff
// channel. A stop the consumer can know of (its own cancel of the parent,
// say) is seen before the next result is taken, as receive sees it; a
// result the worker sent before it saw a stop that came meanwhile goes
// out, as having been taken before it.
func (e *engine[T, R]) receiveHanded() (r result[T, R], ok bool) {
	if e.stopping() && !e.handsOut() {
		return r, false
	}
	p, ok := <-e.handoff
	if !ok {
		return r, false
	}
	r, *p = *p, result[T, R]{} // the place keeps nothing alive
	return r, true
}

// handsOut says whether results still go to the consumer: the run goes
// on, or it stopped and hands out the results that finished before it
// stopped (drainingLocked).
func (e *engine[T, R]) handsOut() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.handsOutLocked()
}

func (e *engine[T, R]) handsOutLocked() bool {
	return !e.stoppedLocked() || e.drainingLocked()
}

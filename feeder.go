package trimeter

import "github.com/trimeter-go/trimeter/throttle"

// When a run has no meter to pass (no MaxPerSecond, no WithMeter, no
// PerKey) and MaxAtOnce lets more than one task run at once, or there is
// no MaxAtOnce, starting a task takes nothing but a free slot. One
// goroutine, the feeder, then ranges over the input sequence itself: it
// takes a slot, lets the sequence produce the next input, and queues it
// for the workers. A worker takes queued inputs one after another; when
// inputs are left in the queue after it took one and no other worker is
// awake to take them, it wakes an idle worker, or adds one while the pool
// is below MaxAtOnce. The feeder does so only when no worker at all is
// awake. Nothing goes through iter.Pull's coroutine, and the feeder and
// the workers run side by side instead of taking turns.
//
// A slot is taken before the input is pulled, so inputs are pulled only
// when a task can start, exactly as on the other paths; a queued input
// holds its slot until its result is delivered. Without MaxAtOnce every
// input may start as soon as it is pulled, and the queue itself is the
// bound: the feeder pulls the next input only while fewer than
// unboundedQueue wait there for a worker.

// unboundedQueue is how many inputs the feeder of a run without MaxAtOnce
// queues for the workers at most: the inputs pulled that no worker has
// taken yet (on the starter's path, one at most). Measured with no-op
// tasks (RunOnEach and AMap without a limit): a queue of 4 cost 160 and
// 240 ns per item, 8 110 and 185, 16 83 and 158, 64 72 and 176, against
// 300 and 390 on the starter's path; tasks that wait (1 to 10 ms each,
// 1,000 or 10,000 of them) ran as fast as on the starter's path, with as
// many at once.
const unboundedQueue = 16

// feeds says whether a run takes this path.
func (e *engine[T, R]) feeds() bool {
	return (e.limit > 1 || e.limit == 0) && e.keyOf == nil && e.rate == nil && len(e.meters) == 0
}

// feed ranges over the inputs, queueing each one for the workers.
func (e *engine[T, R]) feed() { e.rangeInputs(e.enqueue) }

// enqueue queues t on the slot reserved for it, makes sure a worker will
// run it, and reserves a slot for the next input. It returns false when
// the run has stopped.
func (e *engine[T, R]) enqueue(t task[T]) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t.err != nil {
		return e.passErrorLocked(t)
	}
	e.waitPauseLocked() // one may have begun while the input was produced
	if e.stoppedLocked() {
		e.unreserveLocked()
		return false
	}
	e.reserved = false // the slot is t's now
	e.tasks.push(queued[T]{index: t.index, value: t.value})
	// A worker that is awake will take an input and then summon help for
	// the rest; only when none is does the feeder summon one itself. The
	// wake-ups fall on the workers, and the feeder, the one goroutine that
	// every input goes through, spends its time pulling inputs.
	if e.awake == 0 {
		e.summonLocked()
	}
	return e.reserveLocked()
}

// queued is an input waiting in the feeder's queue, with its index. It
// carries no more of its task: an upstream error passes the queue by
// (passErrorLocked), and a fed run has no keys. (A queue of whole tasks,
// each with an interface and a pointer that the GC must know of, cost
// 10 to 15 ns more per input at MaxAtOnce(8) and (64): the runtime copies
// and clears such a struct with write barriers, through calls of its own.)
type queued[T any] struct {
	index int
	value T
}

// passErrorLocked hands on an upstream error on the slot reserved for it,
// and reserves a slot for the next input. The error starts no task, so it
// takes no meter and waits for no pause: the feeder hands it on itself,
// not through the queue, where it would wait behind inputs held by a
// push-back's pause.
func (e *engine[T, R]) passErrorLocked(t task[T]) bool {
	if e.stoppedLocked() {
		e.unreserveLocked()
		return false
	}
	e.reserved = false // the slot is t's now
	e.mu.Unlock()
	v, err := e.call(t, nil) // returns t.err, having ended the run if t says so
	e.failSoon(err)
	e.mu.Lock()
	e.finishLocked(t, v, err)
	return e.reserveLocked()
}

// summonLocked brings one more worker to the queue when its inputs
// outnumber the workers awake (each of which looks at the queue before it
// sleeps): a sleeping one, else a new one. At the limit, the inputs wait
// for busy workers to finish.
func (e *engine[T, R]) summonLocked() {
	switch {
	case e.tasks.n <= e.awake:
	case e.idle > 0:
		e.idle--
		e.awake++
		e.taskReady.Signal()
	case e.limit == 0 || e.workers < e.limit: // with a limit no worker retires
		e.workers++
		e.awake++
		e.goRun(e.runQueued)
	}
}

// runQueued runs queued tasks until the run stops or the feeder has ended
// and the queue is empty, or, without MaxAtOnce, until it finds the queue
// empty with enough workers idle already (keptIdle); while a push-back's
// pause is in force it takes none. The worker counts as awake, and then as
// idle while it sleeps, whenever it is not running a task.
func (e *engine[T, R]) runQueued() {
	var ps []throttle.Permit
	e.mu.Lock()
	for !e.stoppedLocked() {
		if e.tasks.n > 0 && e.pausedLocked() {
			// A push-back's pause began after these inputs were queued:
			// they wait it out, as on every other path.
			e.awaitPauseLocked()
			continue
		}
		if q, ok := e.tasks.pop(); ok {
			t := task[T]{index: q.index, value: q.value}
			if e.tasks.n == 0 && e.roomWaits > 0 && e.hasRoom() {
				e.room.Signal() // the queue is empty: see signalRoomLocked
			}
			e.awake--
			if e.tasks.n > 0 && e.awake == 0 {
				// Help for the rest, before this task runs: one worker
				// at a time, which summons the next in turn. So the pool
				// grows by one worker per wake-up while inputs wait, and
				// quick tasks do not wake a worker for every input.
				e.summonLocked()
			}
			e.mu.Unlock()
			// mu is not held here: if fn calls runtime.Goexit, the
			// goroutine ends with nothing locked (call records it).
			v, err := e.call(t, &ps)
			if err != nil { // see run
				e.failSoon(err)
			}
			e.mu.Lock()
			e.awake++
			e.finishLocked(t, v, err)
			continue
		}
		if e.pulledAll {
			break
		}
		if e.retiresLocked(e.idle) {
			if e.surplusLocked(e.idle) {
				e.idle--
				e.awake++
				e.taskReady.Signal()
			}
			break
		}
		e.awake--
		e.idle++
		e.taskReady.Wait() // whoever wakes it counts it awake again
	}
	e.awake--
	e.mu.Unlock()
}

// awaitPauseLocked waits, with mu released, until the push-back's pause
// in force has ended or the run's context has. Each worker waits on a
// timer of its own: the feeder may be waiting on the shared one.
func (e *engine[T, R]) awaitPauseLocked() {
	d := e.pausedUntil.Sub(e.clock.Now())
	e.mu.Unlock()
	ok := e.sleep(d)
	e.mu.Lock()
	if !ok {
		// A stop (done already), the parent's end (whose own callback may
		// not have run yet) or a failure (failSoon, whose worker may not
		// have taken mu yet) ended the context: stoppedLocked records
		// which, with its error.
		e.stoppedLocked()
	}
}

// wakeIdleLocked wakes every idle worker, to see the run end or stop.
func (e *engine[T, R]) wakeIdleLocked() {
	if e.idle > 0 {
		e.awake += e.idle
		e.idle = 0
		e.taskReady.Broadcast()
	}
}

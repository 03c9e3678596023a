package trimeter

import (
	"context"
)

// prepare checks a call's options and builds its engine. fix forces the
// options that the entry point implies (Ordered for RunAll, say); keys
// finds the key function for fn's argument under PerKey.
func prepare[T, R any](ctx context.Context, inputs any, fn func(context.Context, T) (R, error), opts []Option, mode sinkMode, fix func(*config), keys func(*config) (func(T) any, error)) (*engine[T, R], error) {
	cfg := newConfig(opts)
	if cfg.err != nil {
		return nil, cfg.err
	}
	if fix != nil {
		fix(cfg)
	}
	if inputs == nil {
		return nil, badOption("the input sequence is nil")
	}
	keyOf, err := keys(cfg)
	if err != nil {
		return nil, err
	}
	return newEngine(ctx, fn, keyOf, cfg, mode)
}

// stream runs e over in and hands each result to emit, from the calling
// goroutine, until emit returns false or the run ends. If the run failed,
// emit then gets one more result with index -1 and the run's error. A
// panic of a task or of the inputs is raised here once every worker has
// returned; a panic in emit goes through after the same cleanup.
func (e *engine[T, R]) stream(in inputs[T], emit func(result[T, R]) bool) {
	e.begin(in)
	done := false
	defer func() {
		if !done { // emit panicked: clean up and let its panic go on
			func() {
				// A panic an earlier stage raises in its cleanup would
				// replace the loop's own: drop it.
				defer func() { _ = recover() }()
				e.shutdown()
			}()
		}
	}()
	e.launch()
	for {
		r, ok := e.receive()
		if !ok {
			break
		}
		if !emit(r) {
			done = true
			_ = e.end() // the consumer is gone: only a panic is worth raising
			return
		}
	}
	if err := e.awaitFailure(); err != nil {
		// A task's failure stopped the run: it is yielded once the calls
		// have returned, before the run waits for the input sequence,
		// which may be waiting for the loop body itself (a crawler's that
		// is fed the links the results hold): the loop body can release it
		// only once it has the error. A panic of the loop body here is
		// cleaned up after as any other.
		emit(result[T, R]{index: -1, err: err})
		done = true
		_ = e.end() // the error went out: only a panic is left to raise
		return
	}
	done = true
	if err := e.end(); err != nil {
		emit(result[T, R]{index: -1, err: err})
	}
}

// awaitFailure returns the task's failure that stopped the run under
// fail-fast once no call is running any more, or nil when the run ended
// otherwise (the parent's end, a panic, or all delivered), which end tells.
func (e *engine[T, R]) awaitFailure() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		if !e.stopped || !e.draining || e.err == nil || e.panicked != nil {
			return nil
		}
		if e.callsLocked() == 0 {
			return e.err
		}
		e.waiting = true
		e.mu.Unlock()
		<-e.ready
		e.mu.Lock()
	}
}

// callsLocked returns how many calls are running: the tasks started and
// not finished, but for the slot the feeder (or the serial worker)
// reserved for the input it pulls and the inputs queued that will not run
// now that the run has stopped.
func (e *engine[T, R]) callsLocked() int {
	n := e.running - e.tasks.n
	if e.reserved {
		n--
	}
	return n
}

// end shuts the run down and returns its error, or re-panics with the
// panic that stopped it.
func (e *engine[T, R]) end() error {
	e.shutdown()
	e.mu.Lock()
	p, err := e.panicked, e.err
	e.mu.Unlock()
	if p != nil {
		panic(p)
	}
	return err
}

// errorOnly yields err once, as a call that could not start does.
func errorOnly[A, B any](yield func(A, B) bool, b B) {
	var a A
	yield(a, b)
}

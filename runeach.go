package trimeter

import (
	"context"
	"iter"
)

// RunOnEach calls fn on each input, concurrently under the options'
// limits, and returns once every call has returned. It is the concurrent
// for-loop:
//
//	err := trimeter.RunOnEach(ctx, urls, fetchAndStore,
//		trimeter.MaxAtOnce(5), trimeter.MaxPerSecond(1))
//
// Inputs are pulled lazily, only when a task can start, so an infinite
// input works (until an error or ctx ends the run). Without [MaxAtOnce]
// there is no limit on concurrency. The calling goroutine takes part when
// the workers need not pull the input through iter.Pull's coroutine: it
// ranges over the input (and with MaxAtOnce(1) runs every task itself, so
// that no goroutine is started at all). With [PerKey], or with a rate or
// a meter and no MaxAtOnce or one above 1, it waits for the workers, so
// that it may be locked to its OS thread (see the package doc, Threads).
//
// Errors: by default the first error cancels the context of every call
// still running (as its cause: see the package doc, Stopping), starts
// nothing more, and is returned once they have all returned; errors the
// cancelled calls return are not reported. With [KeepGoing] every input
// runs, and the error joins each failure as an [*ItemError], in input
// order. When ctx ends, the run stops and RunOnEach returns ctx.Err()
// alone (under KeepGoing too: the failures gathered until then are not
// returned), once every call has returned and the input sequence has
// yielded or ended (one that blocks should watch ctx too).
//
// Cost, measured with no-op tasks on a 2-core Linux VM (go1.26; see the
// README's Performance section; the machine's speed varies by up to half
// from hour to hour): about 35 to 65 ns per item at MaxAtOnce(1), where
// the calling goroutine ranges over the input and runs each task itself;
// 45 to 155 ns at MaxAtOnce 8 to 64 with no rate or meter, where the
// calling goroutine ranges over the input and queues each input for the
// workers; 80 to 95 ns unbounded, on the same path (with no limit, up to
// 16 inputs wait in its queue for a worker); under a rate that never makes a
// start wait, about 110 to 115 ns at MaxAtOnce(1) and 300 to 430 ns at
// MaxAtOnce(8), where the workers take turns to pull and start tasks, as
// they do in every run with a rate or a meter (above MaxAtOnce(1)); and
// no allocation per item, under MaxPerSecond too (a meter given with
// [WithMeter] allocates what its permits need: 16 bytes a start for a
// [throttle.Rate]). Memory is bounded by the limit, not by the input:
// under MaxAtOnce(n) at most n inputs are held at any time, one per slot
// (plus, under [PerKey], up to the lookahead and one more waiting aside
// for their keys; under [KeepGoing], the errors kept for the end add to
// it), and a worker's state is reused from one task to the next.
//
// Panics: a panic in fn or in the input sequence stops the run, and once
// every call has returned it is raised again in the calling goroutine as a
// [*PanicError] carrying the original value and the stack where it
// happened; runtime.Goexit in fn or in the input is handled alike (see
// [ErrGoexit]). Bad options, or a nil ctx, fn or inputs, return an error
// wrapping [ErrBadOption], and nothing runs.
func RunOnEach[T any](ctx context.Context, inputs iter.Seq[T], fn func(context.Context, T) error, opts ...Option) error {
	if fn == nil {
		return badOption("fn is nil")
	}
	call := func(ctx context.Context, v T) (struct{}, error) { return struct{}{}, fn(ctx, v) }
	e, err := prepare(ctx, seqArg(inputs), call, opts, discard, unordered, resolveKey[T])
	if err != nil {
		return err
	}
	e.begin(plainInputs(inputs))
	if e.src != nil {
		// The workers pull the input through iter.Pull's coroutine, which
		// this goroutine may not switch into if it is locked to its thread
		// (see source): it waits for them.
		e.launch()
	} else {
		e.runHere()
	}
	e.wg.Wait()
	if err := e.end(); err != nil {
		return err
	}
	return joinInOrder(e.errs)
}

// runHere makes the calling goroutine RunOnEach's first worker, or its
// feeder, on the paths that pull nothing through iter.Pull.
func (e *engine[T, R]) runHere() {
	if !e.fed {
		e.workers = 1 // this goroutine
	}
	returned := false
	defer func() {
		if !returned {
			// fn or the input sequence called runtime.Goexit in this
			// goroutine: stop the others before it ends.
			e.shutdown()
		}
	}()
	e.guarded(e.work) // as the first worker, or as the feeder
	returned = true
}

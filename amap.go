package trimeter

import (
	"context"
	"iter"
)

// AMap calls fn on each input, concurrently under the options' limits, and
// yields each result as it becomes available: in the order the calls finish,
// or in input order under [Ordered]. It is map for concurrent work, with the
// range loop as the consumer:
//
//	for page, err := range trimeter.AMap(ctx, urls, fetch, trimeter.MaxAtOnce(5)) {
//		if err != nil {
//			return err
//		}
//		use(page)
//	}
//
// Nothing runs until the loop starts, and each range over the result runs
// the work afresh. Inputs are pulled lazily, only when a task can start: at
// no time are more than MaxAtOnce + BufferSize + 1 inputs pulled beyond the
// results the loop has received (plus the lookahead under [PerKey]), so an
// infinite input works and memory is bounded by that window, not by the
// input. Without [MaxAtOnce] there is no limit on concurrency.
//
// Errors: by default the first error cancels the context of every call
// still running (as its cause: see the package doc, Stopping), starts
// nothing more, and is yielded once after the results that had finished
// before it, those waiting in the buffer included (under [Ordered], those
// that come in input order before the failed input or the first input that
// had not finished, whichever comes first); then the loop ends. It is
// yielded once every call has returned, without waiting for an input
// sequence that is working out its next value (the loop itself ends only
// once that has yielded or ended), so a sequence that waits on the loop
// body can be released by the body when the error comes. Results
// and errors of the calls that end after the failure are not reported:
// the failure cancelled them. (A result has finished once its worker has
// told its meters and the [Watch] monitor how the call ended and recorded
// it, a moment after fn returns: the result of a call that returned just
// before the failure can still be dropped, even one the monitor already
// counts as finished.)
// With [KeepGoing] every error is yielded in its turn and the run goes on.
// When ctx ends, the run stops and yields ctx.Err() once, as soon as every
// call has returned and the input sequence has yielded or ended (one that
// blocks should watch ctx too). If ctx ends while the results that
// finished before a failure are being yielded, the rest of them are
// dropped, and the error yielded is ctx.Err() or the failure's, whichever
// the run saw first.
//
// Break: when the loop body breaks, returns or panics, AMap cancels the
// context given to the calls in flight, stops pulling inputs (the input
// sequence's own deferred cleanup runs), and returns only once every
// goroutine it started has returned. A panic of the loop body then goes on
// as it is, even when fn or the input panicked first: the run's own panic,
// not raised yet, is dropped, and so is one in the input's cleanup. A call
// that ignores its context delays the break until it returns, and so does
// an input sequence that is working out its next value (blocked on a
// channel, say) until it yields or ends: an input that can block should
// watch a context too. A break does not cancel ctx: a sequence that waits
// on the loop body itself (one it feeds through a channel) must be released
// by the loop body before it breaks, by cancelling a context the sequence
// watches or closing its channel.
//
// Panics: a panic in fn or in the input sequence stops the run as an error
// would, and once every call has returned and the input sequence has
// yielded or ended it is raised again in the goroutine running the loop,
// as a [*PanicError] carrying the original value and the stack where it
// happened. Unlike a failure, it does not reach the loop body first: a
// sequence that waits on the loop body (see [PerKey]) must be released
// some other way (a context that the sequence also watches), or the loop
// never ends. runtime.Goexit in fn or in the input is raised the same
// way, with [ErrGoexit] as the value.
//
// Bad options, or a nil ctx, fn or inputs, are yielded once as an error
// wrapping [ErrBadOption], and nothing runs.
//
// Cost, measured with no-op tasks on a 2-core Linux VM (go1.26; see the
// README's Performance section; the machine's speed varies by up to half
// from hour to hour): 100 to 250 ns per item at MaxAtOnce 1 to 64 with
// BufferSize of the same size (about 250 without a buffer at MaxAtOnce(1),
// where every result is a handoff between two goroutines), 150 to 175 ns
// unbounded, and no allocation per item, under MaxPerSecond too (as for
// [RunOnEach], a meter given with [WithMeter] allocates what its permits
// need). Memory is bounded
// by the window: with an infinite input, MaxAtOnce(64) and ten million
// results consumed, the live heap grew by less than 64 KiB.
func AMap[T, R any](ctx context.Context, inputs iter.Seq[T], fn func(context.Context, T) (R, error), opts ...Option) iter.Seq2[R, error] {
	return func(yield func(R, error) bool) {
		e, err := prepare(ctx, seqArg(inputs), fn, opts, toConsumer, nil, resolveKey[T])
		if err != nil {
			errorOnly(yield, err)
			return
		}
		e.stream(plainInputs(inputs), func(r result[T, R]) bool { return yield(r.val, r.err) })
	}
}

// Then is [AMap] over another stage's output, for pipelines: each value of
// in goes to fn, and each error of in passes through to the consumer without
// calling fn; by default it then ends the pipeline as an error of this stage
// would. Such an error starts no task: it takes a slot, as any input does,
// but no meter's permit, and a push-back's pause does not hold it (though
// an input before it that waits for the pause does: see [Pushback]). Each
// stage has its own options.
//
// Values are pulled through the whole chain only as tasks can start, so a
// pipeline holds at most the sum of its stages' windows. A break at the end
// stops every stage: this stage cancels its calls and stops its input, which
// makes the stage before it do the same, and so on to the first input, whose
// own cleanup runs; no goroutine of any stage outlives the loop. A panic in
// any stage reaches the loop's goroutine with its original value and stack.
//
// One limit comes with pulling: nothing can interrupt a stage while it works
// out its next value. If the break comes while this stage is waiting for the
// stage before it, which is itself waiting for its calls, the break waits
// until that stage produces a value or ends. Finished results are never held
// back while a stage waits on its input, so when calls are in flight
// upstream that wait is at most the time of the quickest one (under
// [Ordered] upstream, of the call at the head of its order, which the others
// wait behind). When none is, the wait lasts as long as the stage before it
// waits to start one: for a rate's token, a push-back's pause, or a retry's
// backoff, on that stage's clock. Cancelling a context that the stages
// share just before the break ends those waits at once. A value that
// arrives after the break is not given to fn: this stage has stopped.
//
// Everything else is as for AMap: when ctx ends, the stage stops its calls
// and its input and yields ctx.Err() once (once the calls have returned and
// the stage before has yielded or ended); a bad option, or a nil ctx, fn
// or in, is yielded once as an error wrapping [ErrBadOption], and nothing
// is pulled from in.
func Then[T, R any](ctx context.Context, in iter.Seq2[T, error], fn func(context.Context, T) (R, error), opts ...Option) iter.Seq2[R, error] {
	return func(yield func(R, error) bool) {
		e, err := prepare(ctx, seqArg(in), fn, opts, toConsumer, nil, resolveKey[T])
		if err != nil {
			errorOnly(yield, err)
			return
		}
		e.stream(pairedInputs(in), func(r result[T, R]) bool { return yield(r.val, r.err) })
	}
}

// Outcomes is [AMap] that keeps going: every call's outcome, value or
// error, is yielded beside its input (its index in the input sequence and
// its value), and a failure does not stop the run.
//
// Everything else is as for AMap: limits, laziness, break, panics. When ctx
// ends, or an option is bad (or ctx, fn or inputs is nil), Outcomes yields
// once an outcome with that error beside an Input whose Index is -1, and
// ends; after ctx ends, it does so once the calls have returned and the
// input sequence has yielded or ended.
func Outcomes[T, R any](ctx context.Context, inputs iter.Seq[T], fn func(context.Context, T) (R, error), opts ...Option) iter.Seq2[Input[T], Outcome[R]] {
	return func(yield func(Input[T], Outcome[R]) bool) {
		e, err := prepare(ctx, seqArg(inputs), fn, opts, toConsumer, keepGoing, resolveKey[T])
		if err != nil {
			yield(Input[T]{Index: -1}, Outcome[R]{Err: err})
			return
		}
		e.stream(plainInputs(inputs), func(r result[T, R]) bool {
			return yield(Input[T]{Index: r.index, Value: r.in}, Outcome[R]{Value: r.val, Err: r.err})
		})
	}
}

// ThenOutcomes is [Then] for a pipeline of outcomes: it calls fn on the
// value of each successful outcome of in, and yields the new outcome beside
// the same Input, so every outcome still tells which original input it came
// from. A failed outcome of in passes through as a failed outcome, without
// calling fn, as an error does in Then. Like [Outcomes], it keeps going,
// with one exception: the outcome beside Index -1 that the stage before
// yields when its own run ends (its context ended, or an option was bad)
// ends this stage too, as its own ctx ending would: the calls in flight
// are cancelled, the outcomes not yet yielded are dropped, and that
// outcome is yielded once, beside Index -1, as the last.
//
// Break and panics are as for [Then]: a break stops this stage and every
// stage before it, and a panic in any stage reaches the loop's goroutine.
// When ctx ends, or an option is bad (or ctx, fn or in is nil),
// ThenOutcomes yields once an outcome with that error beside an Input
// whose Index is -1, and ends; after ctx ends, it does so once the calls
// have returned and the stage before has yielded or ended.
func ThenOutcomes[I, T, R any](ctx context.Context, in iter.Seq2[Input[I], Outcome[T]], fn func(context.Context, T) (R, error), opts ...Option) iter.Seq2[Input[I], Outcome[R]] {
	return func(yield func(Input[I], Outcome[R]) bool) {
		e, err := prepareTraced[I](ctx, in, fn, opts)
		if err != nil {
			yield(Input[I]{Index: -1}, Outcome[R]{Err: err})
			return
		}
		e.stream(pairedInputs(untrace(in)), func(r result[traced[I, T], R]) bool {
			origin := r.in.origin
			if r.index < 0 { // the run's own error
				origin = Input[I]{Index: -1}
			}
			return yield(origin, Outcome[R]{Value: r.val, Err: r.err})
		})
	}
}

// prepareTraced builds the engine of ThenOutcomes, whose tasks carry their
// original input beside fn's argument.
func prepareTraced[I, T, R any](ctx context.Context, in iter.Seq2[Input[I], Outcome[T]], fn func(context.Context, T) (R, error), opts []Option) (*engine[traced[I, T], R], error) {
	if fn == nil {
		return nil, badOption("fn is nil")
	}
	call := func(ctx context.Context, t traced[I, T]) (R, error) { return fn(ctx, t.value) }
	keys := func(c *config) (func(traced[I, T]) any, error) {
		key, err := resolveKey[T](c)
		if key == nil {
			return nil, err
		}
		return func(t traced[I, T]) any { return key(t.value) }, nil
	}
	return prepare(ctx, seqArg(in), call, opts, toConsumer, keepGoing, keys)
}

func keepGoing(c *config) { c.keepGoing = true }

// unordered drops Ordered where it has no results to order (RunOnEach) or
// would only delay the answer (RunAny): under PerKey it would hold back a
// slot for the earliest waiting input for nothing.
func unordered(c *config) { c.ordered = false }

// seqArg turns a sequence argument into a value that is nil when it is.
func seqArg[S ~func(F), F any](s S) any {
	if s == nil {
		return nil
	}
	return s
}

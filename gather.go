package trimeter

import (
	"context"
	"errors"
	"fmt"
	"iter"
)

// RunAll calls each function, concurrently under the options' limits, and
// returns their results in the order of fns, whatever order they finish in;
// it is Promise.all for Go.
//
// By default the first error cancels the calls still running, and RunAll
// returns it with no results once they have all returned. With [KeepGoing]
// every function runs; the results hold the zero value where a function
// failed, and the error joins each failure as an [*ItemError]. When ctx
// ends, RunAll returns ctx.Err() alone with no results (under KeepGoing
// too), once every call has returned and fns has
// yielded or ended (a call that ignores its context delays it). A panic,
// in a function or in fns, is raised again in the calling goroutine as a
// [*PanicError] once every call has returned (runtime.Goexit alike: see
// [ErrGoexit]), and bad options, or a nil ctx or fns, return an error
// wrapping [ErrBadOption] before anything runs. A nil function among fns
// fails, as if it had returned an error that gives its index in fns,
// without a panic.
func RunAll[R any](ctx context.Context, fns iter.Seq[func(context.Context) (R, error)], opts ...Option) ([]R, error) {
	e, err := prepare(ctx, seqArg(fns), callFunc[R], opts, toConsumer, func(c *config) { c.ordered = true }, resolveKey[func(context.Context) (R, error)])
	if err != nil {
		return nil, err
	}
	var (
		results []R
		errs    []error
		failed  error
	)
	e.stream(plainInputs(numbered(fns)), func(r result[func(context.Context) (R, error), R]) bool {
		switch {
		case r.index < 0:
			failed = r.err
		case r.err != nil:
			errs = append(errs, &ItemError{Index: r.index, Err: r.err})
		}
		results = append(results, r.val)
		return true
	})
	if failed != nil {
		return nil, failed
	}
	return results, errors.Join(errs...)
}

// RunAny calls the functions, concurrently under the options' limits, and
// returns the first result that comes without an error, cancelling the
// calls still running and starting no more; it returns once they have
// returned and fns has yielded or ended, so a call that ignores its
// context delays the answer. If every
// function fails, it returns an error that joins theirs, each as an
// [*ItemError], in the order of fns; if there are none, [ErrNoTasks]. When
// ctx ends first, it returns ctx.Err(), once every call has returned and
// fns has yielded or ended. A
// panic, in a function or in fns, is raised again in the calling goroutine
// as a [*PanicError] once every call has returned (runtime.Goexit alike:
// see [ErrGoexit]), and bad options, or a nil ctx or fns, return an error
// wrapping [ErrBadOption] before anything runs. A nil function among fns
// fails, as if it had returned an error that gives its index in fns,
// without a panic.
func RunAny[R any](ctx context.Context, fns iter.Seq[func(context.Context) (R, error)], opts ...Option) (R, error) {
	var zero R
	e, err := prepare(ctx, seqArg(fns), callFunc[R], opts, toConsumer, func(c *config) {
		keepGoing(c)
		unordered(c) // the first success to finish, whatever its place
		c.untilSuccess = true
	}, resolveKey[func(context.Context) (R, error)])
	if err != nil {
		return zero, err
	}
	var (
		first  R
		found  bool
		errs   []error
		failed error
	)
	e.stream(plainInputs(numbered(fns)), func(r result[func(context.Context) (R, error), R]) bool {
		switch {
		case r.index < 0:
			failed = r.err
		case r.err != nil:
			errs = append(errs, &ItemError{Index: r.index, Err: r.err})
		default:
			first, found = r.val, true
			return false
		}
		return true
	})
	switch {
	case found:
		return first, nil
	case failed != nil:
		return zero, failed
	case len(errs) == 0:
		return zero, ErrNoTasks
	}
	return zero, joinInOrder(errs)
}

func callFunc[R any](ctx context.Context, f func(context.Context) (R, error)) (R, error) {
	return f(ctx)
}

// numbered passes fns on, each nil function among them replaced by one
// that fails with an error naming its position, so that the error says
// which function was nil even when it ends the run (fail-fast reports it
// without an ItemError's index).
func numbered[R any](fns iter.Seq[func(context.Context) (R, error)]) iter.Seq[func(context.Context) (R, error)] {
	return func(yield func(func(context.Context) (R, error)) bool) {
		i := 0
		for f := range fns {
			if f == nil {
				f = nilFunc[R](i)
			}
			if !yield(f) {
				return
			}
			i++
		}
	}
}

// nilFunc is the failure of the nil function at index i among RunAll's or
// RunAny's.
func nilFunc[R any](i int) func(context.Context) (R, error) {
	err := fmt.Errorf("trimeter: function %d of fns is nil", i)
	return func(context.Context) (R, error) {
		var zero R
		return zero, err
	}
}

package trimeter

import (
	"context"
	"errors"
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
// ends, RunAll returns ctx.Err(). A panic is raised again in the calling
// goroutine as a [*PanicError] once every call has returned, and bad
// options return an error wrapping [ErrBadOption] before anything runs. A
// nil function among fns fails, as if it had returned an error, without a
// panic.
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
	e.stream(plainInputs(fns), func(r result[func(context.Context) (R, error), R]) bool {
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
// calls still running and starting no more. If every function fails, it
// returns an error that joins theirs, each as an [*ItemError], in the order
// of fns; if there are none, [ErrNoTasks]. When ctx ends first, it returns
// ctx.Err(). A panic is raised again in the calling goroutine as a
// [*PanicError] once every call has returned, and bad options return an
// error wrapping [ErrBadOption] before anything runs. A nil function among
// fns fails, as if it had returned an error, without a panic.
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
	e.stream(plainInputs(fns), func(r result[func(context.Context) (R, error), R]) bool {
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
	if f == nil {
		var zero R
		return zero, errNilFunc
	}
	return f(ctx)
}

// errNilFunc is the failure of a nil function among RunAll's or RunAny's.
var errNilFunc = errors.New("trimeter: the function is nil")

package trimeter

import "iter"

// Adapters between the shapes the entry points take and the one the
// engine runs over: a sequence of inputs, each with an upstream error.

// seq2 pairs each input of seq with a nil error.
func seq2[T any](seq iter.Seq[T]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for v := range seq {
			if !yield(v, nil) {
				return
			}
		}
	}
}

// traced is an input of a later stage in keep-going mode: the value for fn,
// and the original input it came from.
type traced[I, T any] struct {
	origin Input[I]
	value  T
}

// untrace turns a stage's outcomes into inputs of the next stage: a failed
// outcome becomes an input that carries its error past fn. The outcome an
// earlier stage yields when its whole run ended (Index -1: its context
// ended) ends this stage's run with the same error.
func untrace[I, T any](in iter.Seq2[Input[I], Outcome[T]]) iter.Seq2[traced[I, T], error] {
	return func(yield func(traced[I, T], error) bool) {
		for origin, o := range in {
			err := o.Err
			if origin.Index < 0 && err != nil {
				err = &stageEnded{err}
			}
			if !yield(traced[I, T]{origin, o.Value}, err) {
				return
			}
		}
	}
}

// stageEnded is the error of an earlier stage whose run ended as a whole.
type stageEnded struct{ err error }

func (e *stageEnded) Error() string { return e.err.Error() }

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
// outcome becomes an input that carries its error past fn.
func untrace[I, T any](in iter.Seq2[Input[I], Outcome[T]]) iter.Seq2[traced[I, T], error] {
	return func(yield func(traced[I, T], error) bool) {
		for origin, o := range in {
			if !yield(traced[I, T]{origin, o.Value}, o.Err) {
				return
			}
		}
	}
}

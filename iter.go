package trimeter

import "iter"

// Adapters between the shapes the entry points take and the ones the
// engine runs over: inputs, plain or each with an upstream error.

// inputs is the sequence a run takes its inputs from: plain, as the entry
// points take it, or paired, with an upstream error beside each input (a
// later stage's, which passes fn by). The goroutine that ranges over the
// inputs itself (serial.go, feeder.go) ranges over a plain one directly,
// without pairing each input with a nil error on the way.
type inputs[T any] struct {
	plain  iter.Seq[T]
	paired iter.Seq2[T, error]
}

func plainInputs[T any](seq iter.Seq[T]) inputs[T] { return inputs[T]{plain: seq} }

func pairedInputs[T any](seq iter.Seq2[T, error]) inputs[T] { return inputs[T]{paired: seq} }

// seq2 returns the inputs, each with its upstream error: nil for every
// plain one.
func (in inputs[T]) seq2() iter.Seq2[T, error] {
	if in.paired != nil {
		return in.paired
	}
	return func(yield func(T, error) bool) {
		for v := range in.plain {
			if !yield(v, nil) {
				return
			}
		}
	}
}

// each hands every input, as a task numbered in input order, to hand,
// until the inputs end or hand returns false.
func (in inputs[T]) each(hand func(task[T]) bool) {
	index := 0
	if in.plain != nil {
		for v := range in.plain {
			if !hand(task[T]{index: index, value: v}) {
				return
			}
			index++
		}
		return
	}
	for v, err := range in.paired {
		if !hand(task[T]{index: index, value: v, err: err}) {
			return
		}
		index++
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

package trimeter

import (
	"iter"
	"runtime/debug"
	"sync"
)

// source pulls inputs one at a time from a push-style sequence, for the
// workers that start tasks. Only one worker pulls at a time (the starter,
// under engine.startMu), so next is never called concurrently.
type source[T any] struct {
	next  func() (T, error, bool)
	stop  func()
	index int // position of the next input
	done  bool
}

// sourcePanic carries a panic of the input sequence, with the stack taken
// inside the sequence, through iter.Pull's re-panic in the pulling worker.
type sourcePanic struct{ p *PanicError }

func newSource[T any](seq iter.Seq2[T, error]) *source[T] {
	next, stop := iter.Pull2(capturePanics(seq))
	return &source[T]{next: next, stop: sync.OnceFunc(stop)}
}

// capturePanics wraps seq so that a panic inside it is recovered where it
// happens, with that goroutine's stack, and raised again as a sourcePanic.
func capturePanics[T any](seq iter.Seq2[T, error]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		defer func() {
			if r := recover(); r != nil {
				pe, ok := r.(*PanicError) // an upstream stage's, already carried here
				if !ok {
					pe = &PanicError{Value: r, Stack: debug.Stack()}
				}
				panic(sourcePanic{pe})
			}
		}()
		seq(yield)
	}
}

// pull returns the next input and its position; ok is false once the
// sequence has ended.
func (s *source[T]) pull() (v T, err error, index int, ok bool) {
	if s.done {
		return v, nil, 0, false
	}
	v, err, ok = s.next()
	if !ok {
		s.done = true
		return v, nil, 0, false
	}
	index = s.index
	s.index++
	return v, err, index, true
}

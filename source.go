package trimeter

import (
	"iter"
	"runtime/debug"
	"sync"
)

// source pulls inputs one at a time from a push-style sequence, for the
// workers that start tasks. Only one worker pulls at a time (the one
// whose turn it is to start tasks), so next is never called concurrently.
//
// The sequence runs in iter.Pull's coroutine, which the Go runtime lets a
// goroutine switch into only when that goroutine's locking to its thread
// (runtime.LockOSThread) is what its creator's was; it aborts the process
// otherwise. The goroutine that calls the run may be locked; the run's own
// goroutines are not (fn must leave them so). So the coroutine is made by
// the first worker to pull, and stopped from a goroutine of its own.
type source[T any] struct {
	seq   iter.Seq2[T, error]
	next  func() (T, error, bool) // nil until the first pull
	stop  func()
	index int // position of the next input
	done  bool
}

func newSource[T any](seq iter.Seq2[T, error]) *source[T] {
	return &source[T]{seq: seq}
}

// close stops the sequence, running its deferred cleanup, if a pull began,
// and returns what a panic there (a *PanicError, see capturePanics) carried,
// or nil. No worker may be pulling.
func (s *source[T]) close() (p any) {
	if s.stop == nil {
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { p = recover() }()
		s.stop()
	}()
	<-done
	return p
}

// capturePanics wraps seq so that a panic inside it is recovered where it
// happens, with that goroutine's stack, and raised again as a *PanicError:
// iter.Pull then raises it in the worker that pulls (which stops the run),
// or in the consumer when the sequence panics in its cleanup. A
// *PanicError from an earlier stage of a pipeline passes through as it is.
//
// A runtime.Goexit in seq is raised alike, as a *PanicError of ErrGoexit
// with the stack where it was called: iter.Pull would otherwise call
// Goexit again in the worker, whose own stack tells nothing of the input.
//
// It ranges over seq rather than calling it, so that a sequence that goes
// on yielding after yield returned false panics, as the runtime makes it
// in a range loop, instead of looping for ever inside iter.Pull's stop.
func capturePanics[T any](seq iter.Seq2[T, error]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		returned := false
		defer func() {
			r := recover()
			if r == nil && !returned {
				r = ErrGoexit
			}
			if r != nil {
				panic(asPanicError(r))
			}
		}()
		for v, err := range seq {
			if !yield(v, err) {
				break
			}
		}
		returned = true
	}
}

// asPanicError returns r as a *PanicError, taking the stack of the
// current goroutine if r is not one already.
func asPanicError(r any) *PanicError {
	if p, ok := r.(*PanicError); ok && p != nil {
		return p
	}
	return &PanicError{Value: r, Stack: debug.Stack()}
}

// pull returns the next input and its position; ok is false once the
// sequence has ended.
func (s *source[T]) pull() (v T, err error, index int, ok bool) {
	if s.done {
		return v, nil, 0, false
	}
	if s.next == nil {
		next, stop := iter.Pull2(capturePanics(s.seq))
		s.next, s.stop = next, sync.OnceFunc(stop)
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

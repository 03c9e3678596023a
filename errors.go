package trimeter

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// ErrBadOption is wrapped by every error that reports a bad option value.
// Such an error is returned (or yielded once) before anything runs.
var ErrBadOption = errors.New("trimeter: bad option")

// ErrNoTasks is returned by RunAny when there is no task to run.
var ErrNoTasks = errors.New("trimeter: no tasks")

// ErrGoexit is the Value of a [PanicError] when fn, the input sequence or
// a [WithMeter] meter called runtime.Goexit (as t.FailNow does) in a
// goroutine the call started. When that happens in the caller's own
// goroutine (RunOnEach runs tasks or ranges over the input there), the
// call stops the run, waits for its other goroutines, and lets the
// caller's goroutine end as Goexit
// demands; it does not return. Under GODEBUG=panicnil=1, a panic(nil) in
// any of them cannot be told from a Goexit by recover, and is reported
// the same way, with this Value.
var ErrGoexit = errors.New("trimeter: runtime.Goexit called")

// PanicError is the value a call re-panics with, in the caller's
// goroutine, when a task or the input sequence panicked (or called
// runtime.Goexit: see [ErrGoexit]): the other tasks have been cancelled
// and have returned by then. Value is what was passed to panic and Stack
// is the stack of the goroutine that panicked, taken where it happened. A
// *PanicError that reaches a call already (one that a nested call, or an
// earlier stage of a pipeline, raised in fn or in the input) goes on as it
// is, with the Value and Stack of the panic it carries. When several
// panics happen in one run (fn's, then the input's cleanup's, say), the
// first one is raised and the others are dropped; but a panic of the loop
// body over a run's results goes on as it is, and the run's are dropped
// (see [AMap]).
type PanicError struct {
	Value any
	Stack []byte
}

// Error returns "panic: " and the value, then a blank line and the stack.
func (p *PanicError) Error() string {
	return fmt.Sprintf("panic: %v\n\n%s", p.Value, p.Stack)
}

// Unwrap returns Value when it is an error, so errors.Is and errors.As
// see through a PanicError.
func (p *PanicError) Unwrap() error {
	err, _ := p.Value.(error)
	return err
}

// ItemError is a failure of one input under [KeepGoing], or of one
// function when every function of [RunAny] failed: Index is the input's
// position in the sequence, counting from zero.
type ItemError struct {
	Index int
	Err   error // the input's failure; Unwrap returns it
}

// Error returns "input " and the index, then the failure's message.
func (e *ItemError) Error() string { return "input " + strconv.Itoa(e.Index) + ": " + errText(e.Err) }

// joinInOrder joins errs, every one an *ItemError, in the order of their
// inputs.
func joinInOrder(errs []error) error {
	slices.SortFunc(errs, func(a, b error) int {
		return cmp.Compare(a.(*ItemError).Index, b.(*ItemError).Index)
	})
	return errors.Join(errs...)
}

// errText is err's message, or "<nil>" for a field left nil.
func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// Unwrap returns the task's error.
func (e *ItemError) Unwrap() error { return e.Err }

package trimeter

import (
	"errors"
	"time"
)

// Pushback returns an error that tells the scheduler the remote side said
// "not now" (HTTP 429 or 503 with Retry-After, say): for the duration
// after, no new task starts in the scope the push-back applies to. Under
// [PerKey] that is the task's key; otherwise the whole call. Every meter
// the attempt went through ([WithMeter]) is paused too, on its own clock,
// so other calls sharing it hold off as well. A shorter pause never
// shortens a longer one already in force. An after of zero or less holds
// nothing off: the attempt still counts as pushed back, and under [Retry]
// the next attempt starts without a backoff.
//
// errors.Is and errors.As see through the result to err. Under [Retry] the
// next attempt waits for the pause instead of the computed backoff. Without
// Retry, err is reported as usual: under fail-fast the call ends with it
// (the shared meters stay paused for the other calls); under [KeepGoing]
// the call's or the key's pause also holds for the rest of the call. A
// pause holds up starts, not the end: the next input is pulled during it
// (and then waits for its end), so a call whose input has ended returns
// without waiting the pause out. An error that [Then] passes through from
// upstream starts no task: pulled during the pause, it goes on at once. Only
// one input is pulled during a pause, though: one that waits for it holds
// back whatever comes after it, an upstream error too.
func Pushback(after time.Duration, err error) error {
	return &PushbackError{After: after, Err: err}
}

// PushbackError is the error Pushback returns.
type PushbackError struct {
	After time.Duration // the pause asked for; zero or less holds nothing off
	Err   error         // the failure itself, if any; Unwrap returns it
}

// Error returns Err's message followed by the pause, in parentheses, or
// the pause alone when Err is nil.
func (e *PushbackError) Error() string {
	if e.Err == nil {
		return "pushed back for " + e.After.String()
	}
	return e.Err.Error() + " (pushed back for " + e.After.String() + ")"
}

// Unwrap returns the wrapped error.
func (e *PushbackError) Unwrap() error { return e.Err }

// pushbackOf returns the pause asked for by err, if any.
func pushbackOf(err error) (time.Duration, bool) {
	var pb *PushbackError
	if errors.As(err, &pb) {
		return max(pb.After, 0), true
	}
	return 0, false
}

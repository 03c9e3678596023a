package throttle

import (
	"context"
	"strconv"
	"time"
)

// A Meter decides when a task may start. Every meter in this package, and
// any meter a user writes, is safe for concurrent use: one meter may be
// shared by many calls at once (trimeter.WithMeter), and each of them then
// counts against the same limit.
//
// The interface is deliberately small: a meter hands out permits, and a
// permit learns how its task ended. Meters that can answer without waiting
// also implement [Trier]; meters with one limit per key implement [Keyed];
// meters that can report a configuration error before anything runs
// implement [Checker].
type Meter interface {
	// Acquire waits until one task may start and returns its permit. It
	// returns early with ctx's error when ctx ends first, and with another
	// error when the meter cannot decide (it was built with a bad value, or
	// a remote store is unreachable). On error no permit is held and
	// whatever the attempt had reserved is given back; without an error
	// the permit is not nil (trimeter raises a nil one as the run's
	// panic, naming the meter). ctx must not be nil: the meters of this
	// package return an error wrapping [ErrBadValue] for a nil one.
	Acquire(ctx context.Context) (Permit, error)
}

// A Permit is one attempt's admission through a meter. Its holder must
// call Done exactly once, when the attempt has ended or when it will not
// start after all. The meters of this package do not check it (a
// Concurrency's permits cost no allocation that could hold the check): a
// second Done frees a second slot, or gives a second token back.
type Permit interface {
	// Done tells the meter how the attempt ended. A [Concurrency] frees
	// its slot, a [Rate] gives its token back when the status is [Unused],
	// an [Adaptive] meter learns from the latency and the status, and any
	// meter holds off new starts for Outcome.Pause when it is positive.
	Done(Outcome)
}

// A Trier is a Meter that can tell at once whether a task may start. The
// trimeter scheduler uses it to take permits from several meters at the
// same instant, so that a rate meter's token is spent at the moment its
// task starts and never while the task waits for another meter.
type Trier interface {
	Meter
	// TryAcquire returns a permit when a task may start now. Otherwise it
	// returns a nil permit and how long to wait before trying again; a
	// wait of zero means "until some permit is released". Errors are as
	// for Acquire.
	TryAcquire(ctx context.Context) (Permit, time.Duration, error)
}

// Keyed is a family of meters, one per key, for limits that apply to each
// key separately (trimeter.PerKey). ForKey returns the meter for key; it
// may build it on demand and may return a different but equivalent value
// each time, so implementations keep any shared state in a store of their
// own (Redis, say) rather than in the returned value. It must not return
// nil, nor a nil pointer: trimeter raises either as the run's panic,
// naming the meter and the key.
type Keyed interface {
	ForKey(key string) Meter
}

// A Checker is a meter that knows when it was built with a bad value. The
// trimeter scheduler calls Err before it pulls any input: a non-nil error
// ends the call with an error that wraps it (and trimeter.ErrBadOption),
// and nothing runs.
type Checker interface {
	Err() error
}

// Outcome is what a meter learns when an attempt ends.
type Outcome struct {
	// Status says how the attempt ended.
	Status Status
	// Latency is how long the attempt ran; zero for Unused.
	Latency time.Duration
	// Pause, when positive, asks the meter to let no task start for this
	// long, counted on the meter's own clock from the call to Done. A
	// shorter pause never shortens a longer one already in force.
	Pause time.Duration
}

// Status says how an attempt ended.
type Status uint8

const (
	// Unused: the attempt never started (another meter refused it, or
	// the run was cancelled first). A [Rate] gives its token back, as far
	// as its bound allows (see Rate.Acquire).
	Unused Status = iota
	// Succeeded: the attempt ran and returned no error.
	Succeeded
	// Failed: the attempt ran and returned an error.
	Failed
	// PushedBack: the remote side said "not now" (an overload signal,
	// such as HTTP 429 or 503); see trimeter.Pushback.
	PushedBack
	// Canceled: the attempt ran but was cancelled by its caller. Adaptive
	// meters do not learn from it.
	Canceled
)

var statusNames = [...]string{"unused", "succeeded", "failed", "pushed back", "canceled"}

// String returns the status's name in lower case, such as "pushed back".
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

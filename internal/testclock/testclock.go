// Package testclock helps tests run time-dependent code on virtual time.
//
// A [Clock] is a clockwork fake clock that starts at a fixed instant. Its
// helpers wait until the code under test is blocked on the clock (a timer,
// a sleep) before they move it, so that a test never races the goroutines
// it drives; and they wait for that only so long in real time, so that a
// bug fails the test instead of hanging it.
package testclock

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// Start is the instant every Clock starts at.
var Start = time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)

// DefaultTimeout is how long, in real time, a new Clock's helpers wait for
// the code under test to block on the clock.
const DefaultTimeout = 10 * time.Second

// Clock is a fake clock with test helpers. Every method of
// clockwork.FakeClock is available on it.
type Clock struct {
	*clockwork.FakeClock
	// Timeout is how long WaitFor waits in real time; DefaultTimeout unless
	// changed.
	Timeout time.Duration
}

// New returns a Clock at Start.
func New() *Clock {
	return &Clock{FakeClock: clockwork.NewFakeClockAt(Start), Timeout: DefaultTimeout}
}

// WaitFor waits until at least n timers, tickers or sleepers wait on c. If
// that has not happened after c.Timeout of real time it fails tb with
// Fatalf, naming n; call it from the test's own goroutine.
func (c *Clock) WaitFor(tb testing.TB, n int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	if err := c.BlockUntilContext(ctx, n); err != nil {
		tb.Fatalf("testclock: %d waiters did not block on the clock within %v", n, c.Timeout)
	}
}

// AdvanceWhen waits, as WaitFor does, until at least n timers, tickers or
// sleepers wait on c, then moves c forward by d. It does not advance when
// WaitFor fails.
func (c *Clock) AdvanceWhen(tb testing.TB, n int, d time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	if err := c.BlockUntilContext(ctx, n); err != nil {
		tb.Fatalf("testclock: %d waiters did not block on the clock within %v", n, c.Timeout)
		return
	}
	c.Advance(d)
}

// Elapsed returns how far c has moved since Start.
func (c *Clock) Elapsed() time.Duration { return c.Since(Start) }

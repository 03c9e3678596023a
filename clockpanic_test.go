package trimeter_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/internal/testclock"
)

// panickyClock is a fake clock whose Since panics once when armed: with
// value, or with nil (see panicnil_test.go). The run's own rate reads the
// clock given with WithClock, user code, as it takes each token.
type panickyClock struct {
	*testclock.Clock
	armed atomic.Bool
	value any
}

func (c *panickyClock) Since(t time.Time) time.Duration {
	if c.armed.Swap(false) {
		panic(c.value)
	}
	return c.Clock.Since(t)
}

// runOnPanickyClock runs four no-op tasks, one at a time, under the run's
// own rate on clock c, which panics as the second input's token is taken.
// The input sequence recovers what unwinds through it when recovers is
// set. It returns what RunOnEach panicked with, and whether the sequence
// was unwound (rather than told by yield to stop).
func runOnPanickyClock(c *panickyClock, recovers bool) (panicked any, unwound bool) {
	seq := func(yield func(int) bool) {
		returned := false
		defer func() {
			unwound = !returned
			if recovers {
				_ = recover()
			}
		}()
		for i := range 4 {
			if i == 1 {
				c.armed.Store(true)
			}
			if !yield(i) {
				break
			}
		}
		returned = true
	}
	fn := func(context.Context, int) error { return nil }
	panicked = catch(func() {
		_ = trimeter.RunOnEach(context.Background(), seq, fn, trimeter.WithClock(c),
			trimeter.MaxAtOnce(1), trimeter.MaxPerSecond(1000), trimeter.MaxBurst(100))
	})
	return panicked, unwound
}

// A panic in the clock, as the run's own rate reads it, is the run's
// panic, raised again with its value, even when the input sequence
// recovers what unwinds through it.
func TestAPanicInTheClockOfTheRunsOwnRate(t *testing.T) {
	c := &panickyClock{Clock: testclock.New(), value: "clock broke"}
	r, _ := runOnPanickyClock(c, true)
	if pe, ok := r.(*trimeter.PanicError); !ok || pe.Value != "clock broke" {
		t.Errorf("RunOnEach panicked with %T (%v), want a *trimeter.PanicError of the clock's value", r, r)
	}
}

// A panic(nil) under GODEBUG=panicnil=1 in that clock counts as a Goexit,
// as it does in a meter, and the run stops: the input sequence is told to
// stop by yield, not unwound.
func TestAPanicNilInTheClockOfTheRunsOwnRate(t *testing.T) {
	withPanicNil(t)
	c := &panickyClock{Clock: testclock.New()}
	r, unwound := runOnPanickyClock(c, false)
	if pe, ok := r.(*trimeter.PanicError); !ok || pe.Value != trimeter.ErrGoexit {
		t.Errorf("RunOnEach panicked with %T (%v), want a *trimeter.PanicError of ErrGoexit", r, r)
	}
	if unwound {
		t.Error("the input sequence was unwound; want yield to return false")
	}
}

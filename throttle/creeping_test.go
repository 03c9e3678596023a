package throttle_test

import (
	"context"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/internal/testclock"
	"github.com/trimeter-go/trimeter/throttle"
)

// A clock that is not the real one but reads real time (one that wraps the
// real clock, say) moves between any two readings. A waiter on it sleeps on
// its timer, as the documentation of WithClock says, and is woken on time;
// it does not keep reading the clock until the two readings agree.
func TestAWaiterSleepsOnAClockThatMovesOnEveryReading(t *testing.T) {
	const wait = 100 * time.Millisecond
	cases := []struct {
		name string
		// hold makes the meter on clk refuse permits for wait from now.
		hold func(t *testing.T, clk *testclock.Creeping) throttle.Meter
	}{
		{"Rate, waiting for a token", func(t *testing.T, clk *testclock.Creeping) throttle.Meter {
			r := throttle.NewRate(float64(time.Second/wait), 1, throttle.WithClock(clk))
			mustTry(t, r)
			return r
		}},
		{"Concurrency, waiting out a pause", func(t *testing.T, clk *testclock.Creeping) throttle.Meter {
			c := throttle.NewConcurrency(1, throttle.WithClock(clk))
			p, _, err := c.TryAcquire(context.Background())
			if err != nil || p == nil {
				t.Fatalf("TryAcquire: permit %v, err %v", p != nil, err)
			}
			p.Done(throttle.Outcome{Status: throttle.PushedBack, Pause: wait})
			return c
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := testclock.NewCreeping(time.Microsecond)
			m := tc.hold(t, clk)
			before := clk.Reads()
			got := acquireAsync(context.Background(), m)
			clk.AdvanceWhen(t, 1, wait) // moves the fake clock without reading it
			res := <-got
			if res.err != nil {
				t.Fatal(res.err)
			}
			res.p.Done(throttle.Outcome{Status: throttle.Succeeded})
			if n := clk.Reads() - before; n > 20 {
				t.Fatalf("the waiter read the clock %d times while it waited; want a sleep on a timer", n)
			}
		})
	}
}

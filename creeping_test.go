package trimeter_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/internal/testclock"
)

// A key's input that waits for its rate sleeps on a timer, as WithClock's
// documentation says, even on a clock that moves between any two readings
// (one that wraps the real clock, say); it does not keep reading the clock
// until two readings agree.
func TestAKeysWaitSleepsOnAClockThatMovesOnEveryReading(t *testing.T) {
	const wait = 100 * time.Millisecond
	clk := testclock.NewCreeping(time.Microsecond)
	var started []time.Duration
	fn := func(context.Context, int) error {
		started = append(started, clk.Clock.Elapsed()) // MaxAtOnce(1): one at a time
		return nil
	}
	done := make(chan error, 1)
	go func() {
		done <- trimeter.RunOnEach(context.Background(), slices.Values([]int{1, 2}), fn, trimeter.WithClock(clk),
			trimeter.MaxAtOnce(1), trimeter.PerKey(func(int) string { return "k" }, trimeter.MaxPerSecond(float64(time.Second/wait))))
	}()
	clk.AdvanceWhen(t, 1, wait) // moves the fake clock without reading it
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(started) != 2 || started[1] < wait {
		t.Fatalf("the tasks started at %v; want the second one %v after the first or later", started, wait)
	}
	if n := clk.Reads(); n > 50 {
		t.Fatalf("the run read the clock %d times for two tasks; want a sleep on a timer", n)
	}
}

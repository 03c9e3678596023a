package throttle_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/throttle"
)

// A Monitor counts a run's work while it goes; here it watches eight jobs
// started two a second, one of which fails. The run reads a fake clock
// that a goroutine moves on by half a second whenever the run waits for
// it, and the monitor reads the same clock, so its Rate figure is exact:
// eight starts in the 3.5s since the first.
func ExampleNewMonitor() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := clockwork.NewFakeClock()
	go func() {
		for clock.BlockUntilContext(ctx, 1) == nil {
			clock.Advance(500 * time.Millisecond)
		}
	}()

	mon := throttle.NewMonitor(clock)
	jobs := slices.Values([]int{1, 2, 3, 4, 5, 6, 7, 8})
	err := trimeter.RunOnEach(ctx, jobs, func(_ context.Context, job int) error {
		if job == 5 {
			return errors.New("job 5: disk full")
		}
		return nil
	}, trimeter.MaxAtOnce(1), trimeter.MaxPerSecond(2), trimeter.KeepGoing(),
		trimeter.WithClock(clock), trimeter.Watch(mon))
	fmt.Println("error:", err)

	s := mon.Stats() // may be read from any goroutine while the run works, too
	fmt.Printf("started %d, finished %d, failed %d, in flight %d, %.2f starts/s\n",
		s.Started, s.Finished, s.Failed, s.InFlight, s.Rate)
	// Output:
	// error: input 4: job 5: disk full
	// started 8, finished 8, failed 1, in flight 0, 2.29 starts/s
}

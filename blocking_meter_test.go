package trimeter_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/internal/testclock"
	"github.com/trimeter-go/trimeter/throttle"
)

// keyedAcquireOnly gives every key the same meter, which cannot be asked
// without waiting.
type keyedAcquireOnly struct{ acquireOnly }

func (k keyedAcquireOnly) ForKey(string) throttle.Meter { return k.acquireOnly }

// A meter that cannot be asked without waiting (it is not a
// throttle.Trier) holds up no rate token: a task waits in its Acquire
// before it takes the token, so that the token is spent when the task
// starts and MaxPerSecond's bound holds on start times, whether the meter
// is the call's or its key's.
func TestAMeterThatBlocksHoldsNoRateToken(t *testing.T) {
	cases := []struct {
		name string
		opt  func(m throttle.Meter) trimeter.Option
	}{
		{"the call's meter", func(m throttle.Meter) trimeter.Option { return trimeter.WithMeter(m) }},
		{"a key's meter", func(m throttle.Meter) trimeter.Option {
			return trimeter.PerKey(func(int) int { return 0 }, trimeter.WithMeter(keyedAcquireOnly{acquireOnly{m}}))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := testclock.New()
			sem := throttle.NewConcurrency(3, throttle.WithClock(clk))
			meter := throttle.Meter(acquireOnly{sem})
			if tc.name == "a key's meter" {
				meter = sem // wrapped by the option
			}
			starts := make(chan time.Duration, 3)
			release := make(chan struct{})
			fn := func(_ context.Context, i int) error {
				starts <- clk.Elapsed()
				if i == 0 {
					<-release // holds one of the meter's three slots
				}
				return nil
			}
			done := make(chan error, 1)
			go func() {
				done <- trimeter.RunOnEach(context.Background(), slices.Values([]int{0, 1, 2}), fn, trimeter.WithClock(clk),
					trimeter.MaxAtOnce(3), trimeter.MaxPerSecond(1), trimeter.MaxBurst(1), tc.opt(meter))
			}()
			defer func() {
				close(release)
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}()
			if s := <-starts; s != 0 {
				t.Fatalf("the first task started at %v, want 0", s)
			}
			clk.WaitFor(t, 1) // the second waits for its token, due at 1 s
			// Another call takes the meter's two free slots until 5 s.
			p1, _ := sem.Acquire(context.Background())
			p2, _ := sem.Acquire(context.Background())
			clk.Advance(time.Second)
			eventually(t, func() bool { return sem.Stats().Waiting == 1 }, "the second task waiting in the meter")
			clk.Advance(4 * time.Second)
			p1.Done(throttle.Outcome{Status: throttle.Succeeded})
			p2.Done(throttle.Outcome{Status: throttle.Succeeded})
			if s := <-starts; s != 5*time.Second {
				t.Fatalf("the second task started at %v, want 5s, when the meter let it", s)
			}
			// Its token was taken at 5 s, not at 1 s: the third waits for
			// the next one, at 6 s.
			clk.AdvanceWhen(t, 1, time.Second)
			if s := <-starts; s != 6*time.Second {
				t.Fatalf("the third task started at %v, want 6s: at 1 start per second, burst 1", s)
			}
		})
	}
}

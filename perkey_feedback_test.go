package trimeter_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter"
)

// A sequence may wait for the run's own results before it yields again,
// as a crawler does that feeds the links it finds back into its input.
// While it waits, an input waiting aside for its key starts as soon as the
// key lets it: when its key comes free, when its key's rate has a token,
// when its key's pause ends. Here the sequence yields "a1" and "a2" (one
// key, so "a2" waits aside) and then waits for "a2"'s result before it
// ends.
func TestPerKeyInputWaitingAsideStartsWhileTheSequenceWaitsForResults(t *testing.T) {
	cases := map[string]struct {
		keyOpts []trimeter.Option
		fn      func(context.Context, string) (string, error)
	}{
		"its key comes free": {
			keyOpts: []trimeter.Option{trimeter.MaxAtOnce(1)},
			fn:      func(_ context.Context, v string) (string, error) { return v, nil },
		},
		"its key's rate has a token": {
			keyOpts: []trimeter.Option{trimeter.MaxPerSecond(1), trimeter.MaxBurst(1)},
			fn:      func(_ context.Context, v string) (string, error) { return v, nil },
		},
		"its key's pause ends": {
			keyOpts: []trimeter.Option{trimeter.MaxAtOnce(2)},
			fn: func(_ context.Context, v string) (string, error) {
				if v == "a1" {
					return v, trimeter.Pushback(time.Second, errBusy)
				}
				return v, nil
			},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			clk := newFakeClock()
			defer drive(clk, 100*time.Millisecond)()
			// A watchdog: if "a2" never starts, the sequence gives up and
			// the run ends with the watchdog's error.
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			found := make(chan string, 2)
			found <- "a1"
			found <- "a2"
			seq := func(yield func(string) bool) {
				for {
					select {
					case v, ok := <-found:
						if !ok || !yield(v) {
							return
						}
					case <-ctx.Done():
						return
					}
				}
			}
			var got []string
			for v, err := range trimeter.AMap(ctx, seq, c.fn,
				trimeter.MaxAtOnce(4), trimeter.KeepGoing(), trimeter.WithClock(clk),
				trimeter.PerKey(func(v string) byte { return v[0] }, c.keyOpts...)) {
				if err != nil && !errors.Is(err, errBusy) {
					t.Fatalf("after %v: %v", got, err)
				}
				if err != nil {
					v = "error"
				}
				got = append(got, v)
				if v == "a2" {
					close(found)
				}
			}
			if len(got) != 2 || got[1] != "a2" {
				t.Errorf("got %v, want a1 (or its error) then a2", got)
			}
		})
	}
}

// The same, when the only other worker runs a task that waits for the
// result of the input waiting aside: the run adds a worker to start it.
func TestPerKeyInputWaitingAsideStartsWhileEveryOtherWorkerIsBusy(t *testing.T) {
	clk := newFakeClock()
	defer drive(clk, 100*time.Millisecond)()
	ctx, cancel := context.WithTimeout(context.Background(), patience) // a watchdog
	defer cancel()
	found := make(chan string, 2)
	found <- "a1"
	found <- "a2"
	a2done := make(chan struct{})
	seq := func(yield func(string) bool) {
		for {
			select {
			case v, ok := <-found:
				if !ok || !yield(v) {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}
	fn := func(ctx context.Context, v string) (string, error) {
		if v == "a1" {
			select {
			case <-a2done:
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		return v, nil
	}
	var got []string
	for v, err := range trimeter.AMap(ctx, seq, fn, trimeter.MaxAtOnce(3), trimeter.WithClock(clk),
		trimeter.PerKey(func(v string) byte { return v[0] }, trimeter.MaxPerSecond(1), trimeter.MaxBurst(1))) {
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, v)
		if v == "a2" {
			close(a2done)
			close(found)
		}
	}
	if !slices.Equal(got, []string{"a2", "a1"}) {
		t.Errorf("got %v, want a2 then a1", got)
	}
}

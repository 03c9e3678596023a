package trimeter_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/internal/testclock"
	"github.com/trimeter-go/trimeter/throttle"
)

// A sequence may wait for the run's own results before it yields again,
// as a crawler does that feeds the links it finds back into its input.
// While it waits, an input waiting aside for its key starts as soon as the
// key lets it: when its key comes free, when its key's rate has a token,
// when its key's pause ends. Here the sequence yields "a1" and "a2" (one
// key, so "a2" waits aside) and then waits for "a2"'s result before it
// ends. Where "a1"'s result sets the key's pause, the loop feeds "a2" only
// once that result is in: yielded at once, "a2" could start beside "a1"
// (its key takes two at once) before there is a pause to wait for.
func TestPerKeyInputWaitingAsideStartsWhileTheSequenceWaitsForResults(t *testing.T) {
	cases := map[string]struct {
		keyOpts []trimeter.Option
		fn      func(context.Context, string) (string, error)
		afterA1 bool // "a2" is fed once "a1"'s result is in
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
			afterA1: true,
		},
	}
	for name, c := range cases {
		for _, atOnce := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s, MaxAtOnce(%d)", name, atOnce), func(t *testing.T) {
				clk := newFakeClock()
				defer drive(clk, 100*time.Millisecond)()
				// A watchdog: if "a2" never starts, the sequence gives up and
				// the run ends with the watchdog's error.
				ctx, cancel := context.WithTimeout(context.Background(), patience)
				defer cancel()
				first := []string{"a1", "a2"}
				if c.afterA1 {
					first = first[:1]
				}
				found, seq := foundInputs(ctx, first...)
				var got []string
				for v, err := range trimeter.AMap(ctx, seq, c.fn,
					trimeter.MaxAtOnce(atOnce), trimeter.KeepGoing(), trimeter.WithClock(clk),
					trimeter.PerKey(func(v string) byte { return v[0] }, c.keyOpts...)) {
					if err != nil && !errors.Is(err, errBusy) {
						t.Fatalf("after %v: %v", got, err)
					}
					if err != nil {
						v = "error"
					}
					got = append(got, v)
					switch {
					case v == "a2":
						close(found)
					case c.afterA1:
						found <- "a2"
					}
				}
				if len(got) != 2 || got[1] != "a2" {
					t.Errorf("got %v, want a1 (or its error) then a2", got)
				}
			})
		}
	}
}

// foundInputs returns a channel holding first, which the loop body may
// feed and closes to end the inputs, and the sequence of what it holds,
// which waits for the channel and gives up when ctx (a watchdog) ends.
func foundInputs(ctx context.Context, first ...string) (chan string, iter.Seq[string]) {
	found := make(chan string, len(first))
	for _, v := range first {
		found <- v
	}
	return found, func(yield func(string) bool) {
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
}

// The same, when the only other worker runs a task that waits for the
// result of the input waiting aside: the run adds a worker to start it.
func TestPerKeyInputWaitingAsideStartsWhileEveryOtherWorkerIsBusy(t *testing.T) {
	clk := newFakeClock()
	defer drive(clk, 100*time.Millisecond)()
	ctx, cancel := context.WithTimeout(context.Background(), patience) // a watchdog
	defer cancel()
	found, seq := foundInputs(ctx, "a1", "a2")
	a2done := make(chan struct{})
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

// A worker the turn is lent to during a pull may take the last free slot:
// the input pulled then waits aside for a slot, and MaxAtOnce holds. Here
// "c1" runs until the end, and "a2" waits for its key's token and starts
// during the pull that yields "b1", filling both slots. Both end once "b1"
// has started, or waits aside (counted Waiting by the monitor).
func TestPerKeyInputPulledWhileTheLastSlotWasTakenWaits(t *testing.T) {
	clk := newFakeClock()
	defer drive(clk, 100*time.Millisecond)()
	mon := throttle.NewMonitor(clk)
	a2started, b1pulled, finish := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var once sync.Once
	end := func() { once.Do(func() { close(finish) }) }
	seq := func(yield func(string) bool) {
		for _, v := range []string{"c1", "a1", "a2"} {
			if !yield(v) {
				return
			}
		}
		<-a2started
		close(b1pulled)
		yield("b1")
	}
	go func() {
		<-b1pulled
		for mon.Stats().Waiting == 0 {
			select {
			case <-finish:
				return
			default:
				testclock.Yield()
			}
		}
		end()
	}()
	var g gauge
	fn := func(ctx context.Context, v string) (string, error) {
		g.enter()
		defer g.leave()
		switch v {
		case "a2":
			close(a2started)
			<-finish
		case "c1":
			<-finish
		case "b1":
			end()
		}
		return v, nil
	}
	var got []string
	for v, err := range trimeter.AMap(context.Background(), seq, fn, trimeter.MaxAtOnce(2), trimeter.WithClock(clk), trimeter.Watch(mon),
		trimeter.PerKey(func(v string) byte { return v[0] }, trimeter.MaxPerSecond(1), trimeter.MaxBurst(1))) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if m := g.peak.Load(); m > 2 {
		t.Errorf("%d calls ran at once, want at most 2", m)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"a1", "a2", "b1", "c1"}) {
		t.Errorf("got %v", got)
	}
}

// Two inputs waiting aside come due one after the other during one pull:
// "a2" by its key's token a second in, "a3" a second later, while "a1" and
// "a2" run until "a3"'s result is in and the sequence waits for it too.
func TestPerKeyInputsWaitingAsideStartInTurnDuringOnePull(t *testing.T) {
	for _, atOnce := range []int{3, 4, 0} {
		t.Run(fmt.Sprintf("MaxAtOnce(%d)", atOnce), func(t *testing.T) {
			clk := newFakeClock()
			defer drive(clk, 100*time.Millisecond)()
			ctx, cancel := context.WithTimeout(context.Background(), patience) // a watchdog
			defer cancel()
			gotA3 := make(chan struct{})
			seq := func(yield func(string) bool) {
				for _, v := range []string{"a1", "a2", "a3"} {
					if !yield(v) {
						return
					}
				}
				select {
				case <-gotA3:
				case <-ctx.Done():
				}
			}
			fn := func(ctx context.Context, v string) (string, error) {
				if v != "a3" {
					select {
					case <-gotA3:
					case <-ctx.Done():
						return "", ctx.Err()
					}
				}
				return v, nil
			}
			opts := []trimeter.Option{trimeter.WithClock(clk),
				trimeter.PerKey(func(v string) byte { return v[0] }, trimeter.MaxPerSecond(1), trimeter.MaxBurst(1))}
			if atOnce > 0 {
				opts = append(opts, trimeter.MaxAtOnce(atOnce))
			}
			var got []string
			for v, err := range trimeter.AMap(ctx, seq, fn, opts...) {
				if err != nil {
					t.Fatalf("after %v: %v", got, err)
				}
				got = append(got, v)
				if v == "a3" {
					close(gotA3)
				}
			}
			if len(got) != 3 || got[0] != "a3" {
				t.Errorf("got %v, want a3 first, then a1 and a2", got)
			}
		})
	}
}

// While the turn is lent for a pull, the timer that marks an input waiting
// aside due fires when the clock reaches that time, although the clock
// moved while the timer was being set (as a test's goroutine may move a
// fake clock at any moment). Here every timer the run sets moves the clock
// by a step first; "a2" is due a second after "a1" started, and the clock
// is moved to that instant once the run waits on it.
func TestPerKeyLentTurnTimerFiresOnTimeOnAClockMovedWhileItWasSet(t *testing.T) {
	for _, atOnce := range []int{1, 4} {
		t.Run(fmt.Sprintf("MaxAtOnce(%d)", atOnce), func(t *testing.T) {
			fake := newFakeClock()
			clk := movedWhileSet{fake, 100 * time.Millisecond}
			ctx, cancel := context.WithTimeout(context.Background(), patience) // a watchdog
			defer cancel()
			found, seq := foundInputs(ctx, "a1", "a2")
			a1 := make(chan time.Time, 1)
			fn := func(_ context.Context, v string) (string, error) {
				if v == "a1" {
					a1 <- clk.Now()
				}
				return v, nil
			}
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				var due time.Time
				select {
				case at := <-a1:
					due = at.Add(time.Second)
				case <-ctx.Done():
					return
				}
				if fake.BlockUntilContext(ctx, 1) == nil {
					fake.Advance(due.Sub(fake.Now()))
				}
			}()
			defer wg.Wait()
			var got []string
			for v, err := range trimeter.AMap(ctx, seq, fn, trimeter.MaxAtOnce(atOnce), trimeter.WithClock(clk),
				trimeter.PerKey(func(v string) byte { return v[0] }, trimeter.MaxPerSecond(1), trimeter.MaxBurst(1))) {
				if err != nil {
					t.Fatalf("after %v: %v (a2 did not start when its token was due)", got, err)
				}
				got = append(got, v)
				if v == "a2" {
					close(found)
				}
			}
		})
	}
}

// movedWhileSet is a fake clock that moves by step whenever a timer is set
// on it through AfterFunc, before the timer is set.
type movedWhileSet struct {
	*clockwork.FakeClock
	step time.Duration
}

func (c movedWhileSet) AfterFunc(d time.Duration, f func()) clockwork.Timer {
	c.Advance(c.step)
	return c.FakeClock.AfterFunc(d, f)
}

package trimeter_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/internal/testclock"
)

// A rate of 1,000 per second with a bucket of 3: once the bucket is dry,
// the turn is handed on by the clock (pacing.go).
var pacedRate = []trimeter.Option{trimeter.MaxPerSecond(1000), trimeter.MaxBurst(3)}

const pacedInterval = time.Millisecond

// startTimes notes, on a fake clock, when each call began.
type startTimes struct {
	mu sync.Mutex
	at map[int]time.Duration
}

func (s *startTimes) note(v int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at == nil {
		s.at = make(map[int]time.Duration)
	}
	s.at[v] = d
}

func (s *startTimes) get(v int) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.at[v]
	return d, ok
}

// runPacedCounting runs RunOnEach over in at pacedRate on clk, in a
// goroutine, counting the calls in started, and sends its error on the
// channel it returns.
func runPacedCounting(ctx context.Context, clk *testclock.Clock, in *probe, started *counter) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- trimeter.RunOnEach(ctx, in.seq(), func(context.Context, int) error {
			started.add(1)
			return nil
		}, append([]trimeter.Option{trimeter.WithClock(clk)}, pacedRate...)...)
	}()
	return done
}

// Tasks that start and then block keep every worker busy but the ones that
// wait for the turn: each further start must come when its token is due,
// whether a worker comes for the turn or the turn timer wakes one that
// waited for it.
func TestPacedStartsComeWhenTheirTokensAreDue(t *testing.T) {
	trimeter.PaceOnFakeClocks(t)
	for _, limit := range []int{0, 8} {
		t.Run(map[int]string{0: "without MaxAtOnce", 8: "with MaxAtOnce(8)"}[limit], func(t *testing.T) {
			const n = 8
			clk := testclock.New()
			var starts startTimes
			var started counter
			release := make(chan struct{})
			fn := func(_ context.Context, v int) error {
				starts.note(v, clk.Elapsed())
				started.add(1)
				if v%2 == 1 { // the odd ones block; the even ones end at once
					<-release
				}
				return nil
			}
			opts := append([]trimeter.Option{trimeter.WithClock(clk)}, pacedRate...)
			if limit > 0 {
				opts = append(opts, trimeter.MaxAtOnce(limit))
			}
			in := newProbe(n)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- trimeter.RunOnEach(ctx, in.seq(), fn, opts...) }()
			var once sync.Once
			end := func() { once.Do(func() { close(release) }) }
			defer func() { // if the test failed midway: end the run
				cancel()
				end()
			}()
			started.await(t, 3, "the bucket's three starts")
			for k := 3; k < n; k++ {
				clk.AdvanceWhen(t, 1, pacedInterval)
				if !started.await(t, k+1, "the start of the next token") {
					t.FailNow()
				}
			}
			end()
			if err := <-done; err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			for v := range n {
				want := time.Duration(max(0, v-2)) * pacedInterval
				if at, ok := starts.get(v); !ok || at != want {
					t.Errorf("input %d started at %v (noted: %v), want %v", v, at, ok, want)
				}
			}
			checkCleanedUp(t, in)
		})
	}
}

// The turn handed on by the clock must not hold up the end of the run: the
// worker whose task ends takes the turn and finds the input's end, with no
// need for the clock to reach the next token.
func TestPacedRunEndsWithItsLastTask(t *testing.T) {
	trimeter.PaceOnFakeClocks(t)
	clk := testclock.New()
	in := newProbe(5)
	var started counter
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // if the test failed midway: end the run
	done := runPacedCounting(ctx, clk, in, &started)
	for k := 3; k < 5; k++ {
		started.await(t, k, "the starts so far")
		clk.AdvanceWhen(t, 1, pacedInterval)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
	case <-time.After(patience):
		t.Fatalf("the run did not end after its last task (%d started)", started.load())
	}
	if got := started.load(); got != 5 {
		t.Errorf("%d calls, want 5", got)
	}
	checkCleanedUp(t, in)
}

// A break, and a parent's cancel, while workers wait for a turn that the
// clock is to hand on: the clock never moves again, and the call must still
// return at once with every worker gone.
func TestPacedTurnWaitersLeaveOnBreakAndCancel(t *testing.T) {
	trimeter.PaceOnFakeClocks(t)
	t.Run("break", func(t *testing.T) {
		clk := testclock.New()
		in := newProbe(-1)
		var blocked blocker
		fn := func(ctx context.Context, v int) (int, error) {
			if v == 2 {
				return 0, blocked.block(t, ctx)
			}
			return v, nil
		}
		got := 0
		for _, err := range trimeter.AMap(context.Background(), in.seq(), fn, append([]trimeter.Option{trimeter.WithClock(clk)}, pacedRate...)...) {
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if got++; got == 2 {
				blocked.started.await(t, 1, "the blocked call")
				clk.WaitFor(t, 1) // the next start waits for the clock
				break
			}
		}
		blocked.checkAllCancelled(t)
		checkCleanedUp(t, in)
	})
	t.Run("cancel", func(t *testing.T) {
		clk := testclock.New()
		in := newProbe(-1)
		ctx, cancel := context.WithCancel(context.Background())
		var started counter
		done := runPacedCounting(ctx, clk, in, &started)
		started.await(t, 3, "the bucket's three starts")
		clk.WaitFor(t, 1)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("RunOnEach = %v, want %v", err, context.Canceled)
		}
		checkCleanedUp(t, in)
	})
}

package trimeter_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trimeter-go/trimeter"
)

// A cancel of the parent context in the loop body ends the run at once:
// the next thing the loop gets is ctx.Err(), whatever results had
// finished meanwhile. (The run learns of the end from the context itself,
// not only from a callback that runs later in a goroutine of its own.)
func TestParentCancelInTheLoopBodyIsTheLastThingYielded(t *testing.T) {
	forLimitsAndOrders(t, "AMap", func(t *testing.T, _ limitCase, _ bool, opts []trimeter.Option) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		fn := func(_ context.Context, v int) (int, error) { return v, nil }
		var after []error
		first := true
		for _, err := range trimeter.AMap(ctx, newProbe(1000).seq(), fn, opts...) {
			if first {
				first = false
				cancel()
				continue
			}
			after = append(after, err)
		}
		if len(after) != 1 || !errors.Is(after[0], context.Canceled) {
			t.Errorf("after the cancel the loop got %d items (%v ...), want only context.Canceled", len(after), after[:min(len(after), 3)])
		}
	})
}

// A cancel of the parent context from fn keeps every task that had not
// started yet from starting: at most the other calls already admitted run.
func TestParentCancelInFnStartsNothingMore(t *testing.T) {
	for _, lc := range limitCases {
		if lc.atOnce == 0 {
			continue // no bound on the calls admitted before the cancel
		}
		t.Run("RunOnEach "+lc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var started, atCancel atomic.Int64
			fn := func(_ context.Context, v int) error {
				started.Add(1)
				if v == 0 {
					cancel()
					atCancel.Store(started.Load()) // counted once cancel has returned
				}
				return nil
			}
			err := trimeter.RunOnEach(ctx, newProbe(100000).seq(), fn, lc.opts...)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("RunOnEach = %v, want context.Canceled", err)
			}
			// Calls that start after the cancel are those admitted before
			// it: at most MaxAtOnce-1 besides the one that cancelled.
			if later := started.Load() - atCancel.Load(); later > int64(lc.atOnce-1) {
				t.Errorf("%d calls started after the cancel, want at most %d", later, lc.atOnce-1)
			}
		})
	}
}

// exitAfterOne yields 0, then calls runtime.Goexit.
func exitAfterOne(yield func(int) bool) {
	if yield(0) {
		runtime.Goexit()
	}
}

// A runtime.Goexit in the input comes out with the stack where it was
// called, on every path: the input's own function is in it.
func TestGoexitInTheInputKeepsItsStack(t *testing.T) {
	for _, lc := range limitCases {
		t.Run("AMap "+lc.name, func(t *testing.T) {
			fn := func(_ context.Context, v int) (int, error) { return v, nil }
			e := callAlone(func() {
				for range trimeter.AMap(context.Background(), exitAfterOne, fn, lc.opts...) {
				}
			})
			pe, ok := e.panic.(*trimeter.PanicError)
			if !ok || !errors.Is(pe, trimeter.ErrGoexit) {
				t.Fatalf("the loop ended with %+v, want a *PanicError of ErrGoexit", e)
			}
			if !strings.Contains(string(pe.Stack), "exitAfterOne") {
				t.Errorf("the stack does not show the input that called Goexit:\n%s", pe.Stack)
			}
		})
	}
}

// A cancel of the parent context while the results that finished before a
// failure are handed out cuts them short: the loop gets one error, the
// failure's or ctx.Err(), and nothing more.
func TestParentCancelCutsAFailuresResultsShort(t *testing.T) {
	for _, lc := range limitCases {
		if lc.atOnce != 0 && lc.atOnce < 3 {
			continue // inputs 0 to 2 must run at once
		}
		t.Run("the loop gets one error "+lc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			fail := make(chan struct{})
			fn := func(ctx context.Context, v int) (int, error) {
				switch v {
				case 0, 1:
					return v, nil
				case 2:
					<-fail
					return 0, errBoom
				}
				awaitCancel(t, ctx) // until the failure cancels it
				return 0, ctx.Err()
			}
			opts := append(slices.Clone(lc.opts), trimeter.Ordered(), trimeter.BufferSize(3))
			var got []int
			var errs []error
			for v, err := range trimeter.AMap(ctx, newProbe(4).seq(), fn, opts...) {
				if err != nil {
					errs = append(errs, err)
					continue
				}
				got = append(got, v)
				if v == 0 {
					close(fail)
					cancel()
				}
			}
			if !slices.Equal(got, []int{0}) {
				t.Errorf("results %v, want [0]: result 1 had not gone out before the cancel", got)
			}
			if len(errs) != 1 || !(errors.Is(errs[0], errBoom) || errors.Is(errs[0], context.Canceled)) {
				t.Errorf("errors %v, want one: the failure's or context.Canceled", errs)
			}
		})
	}
}

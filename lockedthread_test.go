package trimeter_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/throttle"
)

// The goroutine that calls a run may be locked to its OS thread (a GUI
// program's main goroutine, say). On the paths where workers pull the
// input through iter.Pull's coroutine, the Go runtime aborts the process
// when a goroutine whose locking differs from the coroutine's creator
// switches into it; so the caller's goroutine must make no such switch,
// neither to pull nor to stop the input. A regression here aborts the
// test binary with the runtime's "coro" fatal error.
func TestACallerLockedToItsThread(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []trimeter.Option
	}{
		{"with no limit", nil}, // the feeder's path: the caller ranges over the input
		{"with a rate and no limit", []trimeter.Option{trimeter.MaxPerSecond(1e6), trimeter.MaxBurst(100)}},
		{"with a rate", []trimeter.Option{trimeter.MaxAtOnce(3), trimeter.MaxPerSecond(1e6), trimeter.MaxBurst(100)}},
		{"with a meter", []trimeter.Option{trimeter.MaxAtOnce(3), trimeter.WithMeter(throttle.NewConcurrency(2))}},
		{"with PerKey", []trimeter.Option{trimeter.PerKey(func(v int) int { return v % 3 }, trimeter.MaxAtOnce(1))}},
	} {
		t.Run("AMap, broken off, "+c.name, func(t *testing.T) {
			p := newProbe(10)
			got := onALockedThread(func() (n int) {
				for _, err := range trimeter.AMap(context.Background(), p.seq(), square, c.opts...) {
					if err != nil {
						t.Error(err)
					}
					if n++; n == 4 {
						break // the input is stopped while it is in the middle
					}
				}
				return n
			})
			if got != 4 {
				t.Errorf("%d results, want 4", got)
			}
			checkCleanedUp(t, p)
		})
		t.Run("RunOnEach "+c.name, func(t *testing.T) {
			p := newProbe(10)
			// Inputs 0 and 1 each wait for the other to start: while the
			// first of them runs, another worker pulls the second.
			var started atomic.Int32
			both := make(chan struct{})
			fn := func(context.Context, int) error { return nil }
			pair := func(ctx context.Context, v int) error {
				if v < 2 {
					if started.Add(1) == 2 {
						close(both)
					}
					select {
					case <-both:
					case <-time.After(patience):
						return fmt.Errorf("input %d: the other of inputs 0 and 1 did not start", v)
					}
				}
				return fn(ctx, v)
			}
			got := onALockedThread(func() int {
				if err := trimeter.RunOnEach(context.Background(), p.seq(), pair, c.opts...); err != nil {
					t.Error(err)
				}
				return int(p.pulled.Load())
			})
			if got != 10 {
				t.Errorf("%d inputs pulled, want 10", got)
			}
			checkCleanedUp(t, p)
		})
	}
}

// onALockedThread runs f in a goroutine locked to its thread, and returns
// its result.
func onALockedThread(f func() int) int {
	res := make(chan int)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		res <- f()
	}()
	return <-res
}

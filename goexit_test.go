package trimeter_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/throttle"
)

// goexitInputs yields 0..n-1, then calls runtime.Goexit. clean counts the
// times its deferred cleanup ran.
func goexitInputs(n int, clean *atomic.Int64) iter.Seq[int] {
	return func(yield func(int) bool) {
		defer clean.Add(1)
		for i := range n {
			if !yield(i) {
				return
			}
		}
		runtime.Goexit()
	}
}

// ending says how a call made in its own goroutine ended.
type ending struct {
	returned bool // the call returned
	panic    any  // what it panicked with, if it did
}

// callAlone runs f in a goroutine of its own and says how it ended: it
// returned, it panicked, or runtime.Goexit ended the goroutine.
func callAlone(f func()) ending {
	var e ending
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { e.panic = recover() }()
		f()
		e.returned = true
	}()
	<-done
	return e
}

// checkGoexitEnding asserts that a call during which runtime.Goexit ran did
// not return: either it raised a PanicError carrying ErrGoexit, or the
// Goexit ended the calling goroutine itself (it ran there).
func checkGoexitEnding(t *testing.T, e ending) {
	t.Helper()
	if e.returned {
		t.Fatal("the call returned as if nothing had happened")
	}
	if e.panic == nil {
		return // Goexit ran in the calling goroutine and ended it
	}
	pe, ok := e.panic.(*trimeter.PanicError)
	if !ok || !errors.Is(pe, trimeter.ErrGoexit) {
		t.Fatalf("panicked with %#v, want a *PanicError carrying ErrGoexit", e.panic)
	}
}

func TestGoexitInFn(t *testing.T) {
	forLimitsAndOrders(t, "Goexit in fn stops AMap and reaches the loop as a panic", func(t *testing.T, lc limitCase, _ bool, opts []trimeter.Option) {
		k := below(lc.atOnce, 2)
		var b blocker
		fn := func(ctx context.Context, v int) (int, error) {
			if v == k {
				b.started.await(t, k, "calls blocked")
				runtime.Goexit()
			}
			return 0, b.block(t, ctx)
		}
		p := newProbe(6)
		e := callAlone(func() {
			for _, err := range trimeter.AMap(context.Background(), p.seq(), fn, opts...) {
				t.Errorf("unexpected result (error %v)", err)
			}
		})
		if e.panic == nil {
			t.Fatalf("the loop ended with %+v, want a panic", e)
		}
		checkGoexitEnding(t, e)
		b.checkAllCancelled(t)
		checkCleanedUp(t, p)
	})
	for _, lc := range limitCases {
		t.Run("Goexit in fn stops RunOnEach "+lc.name, func(t *testing.T) {
			k := below(lc.atOnce, 2)
			var b blocker
			fn := func(ctx context.Context, v int) error {
				if v == k {
					b.started.await(t, k, "calls blocked")
					runtime.Goexit()
				}
				return b.block(t, ctx)
			}
			p := newProbe(6)
			checkGoexitEnding(t, callAlone(func() { _ = trimeter.RunOnEach(context.Background(), p.seq(), fn, lc.opts...) }))
			b.checkAllCancelled(t)
			checkCleanedUp(t, p)
		})
	}
}

// RunAll and RunAny raise a Goexit in one of their functions as they do a
// panic, once the other calls have returned.
func TestGoexitInRunAllAndRunAny(t *testing.T) {
	calls := map[string]func(iter.Seq[func(context.Context) (int, error)], ...trimeter.Option){
		"RunAll": func(fns iter.Seq[func(context.Context) (int, error)], opts ...trimeter.Option) {
			_, _ = trimeter.RunAll(context.Background(), fns, opts...)
		},
		"RunAny": func(fns iter.Seq[func(context.Context) (int, error)], opts ...trimeter.Option) {
			_, _ = trimeter.RunAny(context.Background(), fns, opts...)
		},
	}
	for name, call := range calls {
		for _, n := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s MaxAtOnce(%d)", name, n), func(t *testing.T) {
				var b blocker
				exits := func(context.Context) (int, error) {
					b.started.await(t, n-1, "calls blocked")
					runtime.Goexit()
					return 0, nil
				}
				blocks := func(ctx context.Context) (int, error) { return 0, b.block(t, ctx) }
				fns := []func(context.Context) (int, error){blocks, exits}
				if n == 1 {
					fns = []func(context.Context) (int, error){exits, blocks}
				}
				checkGoexitEnding(t, callAlone(func() { call(slices.Values(fns), trimeter.MaxAtOnce(n)) }))
				b.checkAllCancelled(t)
			})
		}
	}
}

func TestGoexitInInput(t *testing.T) {
	forLimitsAndOrders(t, "Goexit in the input stops AMap and reaches the loop as a panic", func(t *testing.T, lc limitCase, _ bool, opts []trimeter.Option) {
		k := below(lc.atOnce, 2)
		var b blocker
		fn := b.mapBelow(t, k)
		var clean atomic.Int64
		e := callAlone(func() {
			for _, err := range trimeter.AMap(context.Background(), goexitInputs(2, &clean), fn, opts...) {
				if err != nil {
					t.Errorf("unexpected error %v", err)
				}
			}
		})
		if e.panic == nil {
			t.Fatalf("the loop ended with %+v, want a panic", e)
		}
		checkGoexitEnding(t, e)
		b.checkAllCancelled(t)
		checkCleanedOnce(t, &clean)
		goleak.VerifyNone(t)
	})
	for _, lc := range limitCases {
		t.Run("Goexit in the input stops RunOnEach "+lc.name, func(t *testing.T) {
			k := below(lc.atOnce, 2)
			var b blocker
			fn := b.below(t, k)
			var clean atomic.Int64
			checkGoexitEnding(t, callAlone(func() {
				_ = trimeter.RunOnEach(context.Background(), goexitInputs(2, &clean), fn, lc.opts...)
			}))
			b.checkAllCancelled(t)
			checkCleanedOnce(t, &clean)
			goleak.VerifyNone(t)
		})
	}
}

// goexitMeter calls runtime.Goexit in Acquire on its third use, as a test
// meter calling t.FailNow would.
type goexitMeter struct{ uses atomic.Int64 }

func (m *goexitMeter) Acquire(context.Context) (throttle.Permit, error) {
	if m.uses.Add(1) == 3 {
		runtime.Goexit()
	}
	return goexitPermit{}, nil
}

type goexitPermit struct{}

func (goexitPermit) Done(throttle.Outcome) {}

func TestGoexitInMeter(t *testing.T) {
	limits := map[string][]trimeter.Option{
		"MaxAtOnce(1)": {trimeter.MaxAtOnce(1)},
		"MaxAtOnce(3)": {trimeter.MaxAtOnce(3)},
		"no MaxAtOnce": nil,
	}
	for name, lim := range limits {
		t.Run("Goexit in a meter stops AMap with "+name, func(t *testing.T) {
			p := newProbe(20)
			opts := append(slices.Clone(lim), trimeter.WithMeter(&goexitMeter{}))
			e := callAlone(func() {
				for range trimeter.AMap(context.Background(), p.seq(), square, opts...) {
				}
			})
			if e.panic == nil {
				t.Fatalf("the loop ended with %+v, want a panic", e)
			}
			checkGoexitEnding(t, e)
			checkCleanedUp(t, p)
		})
		t.Run("Goexit in a meter stops RunOnEach with "+name, func(t *testing.T) {
			p := newProbe(20)
			opts := append(slices.Clone(lim), trimeter.WithMeter(&goexitMeter{}))
			checkGoexitEnding(t, callAlone(func() {
				_ = trimeter.RunOnEach(context.Background(), p.seq(), func(context.Context, int) error { return nil }, opts...)
			}))
			checkCleanedUp(t, p)
		})
	}
}

// exitingMeter calls runtime.Goexit in its permits' Done, or in
// TryAcquire.
type exitingMeter struct{ inTry bool }

type exitingPermit struct{}

func (exitingPermit) Done(throttle.Outcome) { runtime.Goexit() }

func (m exitingMeter) Acquire(context.Context) (throttle.Permit, error) {
	return exitingPermit{}, nil
}

func (m exitingMeter) TryAcquire(context.Context) (throttle.Permit, time.Duration, error) {
	if m.inTry {
		runtime.Goexit()
	}
	return exitingPermit{}, 0, nil
}

// A Goexit in a meter, in a permit's Done or in TryAcquire, does not keep
// the call's other meters from getting their permits back: a shared meter
// loses none for good.
func TestGoexitInAMeterGivesBackTheOtherMetersPermits(t *testing.T) {
	for _, inTry := range []bool{false, true} {
		t.Run(fmt.Sprintf("in TryAcquire %v", inTry), func(t *testing.T) {
			shared := throttle.NewConcurrency(1)
			// In Done, the exiting meters' permits are done first; in
			// TryAcquire, the shared meter's permit is taken first.
			// Two exiting meters: a Goexit in the give-back of one does
			// not end it for the other's.
			meters := []trimeter.Option{trimeter.WithMeter(exitingMeter{}), trimeter.WithMeter(exitingMeter{}), trimeter.WithMeter(shared)}
			if inTry {
				meters = []trimeter.Option{trimeter.WithMeter(exitingMeter{}), trimeter.WithMeter(exitingMeter{}),
					trimeter.WithMeter(shared), trimeter.WithMeter(exitingMeter{inTry: true})}
			}
			opts := append([]trimeter.Option{trimeter.MaxAtOnce(2)}, meters...)
			e := callAlone(func() {
				for range trimeter.AMap(context.Background(), newProbe(1).seq(), func(_ context.Context, v int) (int, error) { return v, nil }, opts...) {
				}
			})
			checkGoexitEnding(t, e)
			if s := shared.Stats(); s.InFlight != 0 {
				t.Errorf("the shared meter has %d permits in flight after the run, want 0", s.InFlight)
			}
		})
	}
}

// A Goexit in the key function, or in the input, while inputs wait aside
// for their key: the turn to start tasks is lent for that pull, and is
// handed back as the goroutine ends. Input 0 runs until cancelled, so
// inputs 1 and 2, of its key, wait aside.
func TestGoexitWhileInputsWaitAside(t *testing.T) {
	cases := map[string]struct {
		in  func(*atomic.Int64) iter.Seq[int]
		key func(int) int
	}{
		"in the key function": {
			in: func(clean *atomic.Int64) iter.Seq[int] { return goexitInputs(4, clean) },
			key: func(v int) int {
				if v == 3 {
					runtime.Goexit()
				}
				return 0
			},
		},
		"in the input": {
			in:  func(clean *atomic.Int64) iter.Seq[int] { return goexitInputs(3, clean) },
			key: func(int) int { return 0 },
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var b blocker
			var clean atomic.Int64
			e := callAlone(func() {
				for _, err := range trimeter.AMap(context.Background(), c.in(&clean), b.mapBelow(t, 1),
					trimeter.MaxAtOnce(4), trimeter.PerKey(c.key, trimeter.MaxAtOnce(1))) {
					t.Errorf("unexpected result (error %v)", err)
				}
			})
			checkGoexitEnding(t, e)
			if e.panic == nil {
				t.Fatalf("the loop ended with %+v, want a panic", e)
			}
			b.checkAllCancelled(t)
			checkCleanedOnce(t, &clean)
			goleak.VerifyNone(t)
		})
	}
}

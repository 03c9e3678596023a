package trimeter_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/goleak"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/throttle"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errBoom = errors.New("boom")

func square(_ context.Context, v int) (int, error) { return v * v, nil }

// yielded is one pair an AMap loop received.
type yielded struct {
	v   int
	err error
}

func collect(seq iter.Seq2[int, error]) []yielded {
	var out []yielded
	for v, err := range seq {
		out = append(out, yielded{v, err})
	}
	return out
}

// blocker counts calls that block until their context is cancelled, and
// those that saw the cancel.
type blocker struct {
	started   counter
	cancelled atomic.Int64
}

// block waits for ctx to be cancelled and returns its error.
func (b *blocker) block(t testing.TB, ctx context.Context) error {
	b.started.add(1)
	err := awaitCancel(t, ctx)
	if errors.Is(err, context.Canceled) {
		b.cancelled.Add(1)
	}
	return err
}

// below returns a task for RunOnEach that blocks until cancelled for the
// inputs below k and returns at once for the others.
func (b *blocker) below(t testing.TB, k int) func(context.Context, int) error {
	return func(ctx context.Context, v int) error {
		if v < k {
			return b.block(t, ctx)
		}
		return nil
	}
}

// mapBelow is below for AMap: the others return their own input.
func (b *blocker) mapBelow(t testing.TB, k int) func(context.Context, int) (int, error) {
	return func(ctx context.Context, v int) (int, error) {
		if v < k {
			return 0, b.block(t, ctx)
		}
		return v, nil
	}
}

// checkCleanedOnce asserts that an input's deferred cleanup, counted in
// clean, ran exactly once.
func checkCleanedOnce(t *testing.T, clean *atomic.Int64) {
	t.Helper()
	if n := clean.Load(); n != 1 {
		t.Errorf("the input's deferred cleanup ran %d times, want 1", n)
	}
}

// checkAllCancelled asserts that every blocked call was cancelled and has
// returned.
func (b *blocker) checkAllCancelled(t *testing.T) {
	t.Helper()
	if s, c := b.started.load(), b.cancelled.Load(); int64(s) != c {
		t.Errorf("%d calls blocked, %d were cancelled and returned", s, c)
	}
}

func TestAMapBreakAtEveryPosition(t *testing.T) {
	const n = 5
	forLimitsAndOrders(t, "breaking cleans up", func(t *testing.T, _ limitCase, _ bool, opts []trimeter.Option) {
		for stopAt := 1; stopAt <= n; stopAt++ {
			t.Run(fmt.Sprintf("after result %d of %d", stopAt, n), func(t *testing.T) {
				p := newProbe(n)
				got := 0
				for _, err := range trimeter.AMap(context.Background(), p.seq(), square, opts...) {
					if err != nil {
						t.Errorf("unexpected error %v", err)
					}
					got++
					if got == stopAt {
						break
					}
				}
				if got != stopAt {
					t.Errorf("received %d results, want %d", got, stopAt)
				}
				checkCleanedUp(t, p)
			})
		}
	})
}

func TestAMapReturnFromTheLoopCleansUp(t *testing.T) {
	p := newProbe(-1)
	firstThree := func() []int {
		var out []int
		for v, err := range trimeter.AMap(context.Background(), p.seq(), square, trimeter.MaxAtOnce(2), trimeter.Ordered()) {
			if err != nil {
				t.Errorf("unexpected error %v", err)
				return nil
			}
			if out = append(out, v); len(out) == 3 {
				return out
			}
		}
		return out
	}
	if got := firstThree(); !slices.Equal(got, []int{0, 1, 4}) {
		t.Errorf("got %v, want [0 1 4]", got)
	}
	checkCleanedUp(t, p)
}

func TestAMapBreakCancelsCallsInFlight(t *testing.T) {
	const n = 6
	forLimitsAndOrders(t, "a break cancels the calls in flight and waits for them", func(t *testing.T, lc limitCase, _ bool, opts []trimeter.Option) {
		var b blocker
		fn := func(ctx context.Context, v int) (int, error) {
			if v == 0 {
				return 0, nil
			}
			return 0, b.block(t, ctx)
		}
		p := newProbe(n)
		for _, err := range trimeter.AMap(context.Background(), p.seq(), fn, opts...) {
			if err != nil {
				t.Errorf("unexpected error %v", err)
			}
			b.started.await(t, below(lc.atOnce, n-1), "calls blocked")
			break
		}
		b.checkAllCancelled(t)
		checkCleanedUp(t, p)
	})
}

// detonate panics with a value that names v; tests look for it in the
// PanicError's stack.
func detonate(v int) { panic(boomValue{v}) }

type boomValue struct{ at int }

func TestAMapPanicInFn(t *testing.T) {
	const n = 6
	forLimitsAndOrders(t, "a panic in fn reaches the loop once the other calls ended", func(t *testing.T, lc limitCase, _ bool, opts []trimeter.Option) {
		k := below(lc.atOnce, 2) // inputs 0..k-1 block, input k panics
		var b blocker
		fn := func(ctx context.Context, v int) (int, error) {
			if v == k {
				b.started.await(t, k, "calls blocked")
				detonate(v)
			}
			return 0, b.block(t, ctx)
		}
		p := newProbe(n)
		r := catch(func() {
			for _, err := range trimeter.AMap(context.Background(), p.seq(), fn, opts...) {
				t.Errorf("unexpected result (error %v)", err)
			}
		})
		checkPanicError(t, r, boomValue{k}, "detonate")
		b.checkAllCancelled(t)
		checkCleanedUp(t, p)
	})
}

// explodingInputs yields 0..n-1, then panics with v. clean counts the
// times its deferred cleanup ran.
func explodingInputs(n int, v any, clean *atomic.Int64) iter.Seq[int] {
	return func(yield func(int) bool) {
		defer clean.Add(1)
		for i := range n {
			if !yield(i) {
				return
			}
		}
		panic(v)
	}
}

type seqBoom struct{}

func TestAMapPanicInInput(t *testing.T) {
	forLimitsAndOrders(t, "a panic in the input reaches the loop once the calls ended", func(t *testing.T, lc limitCase, _ bool, opts []trimeter.Option) {
		k := below(lc.atOnce, 2) // inputs 0..k-1 block, so that the panic comes while they run
		var b blocker
		fn := b.mapBelow(t, k)
		var clean atomic.Int64
		got := 0
		r := catch(func() {
			for _, err := range trimeter.AMap(context.Background(), explodingInputs(2, seqBoom{}, &clean), fn, opts...) {
				if err != nil {
					t.Errorf("unexpected error %v", err)
				}
				got++
			}
		})
		checkPanicError(t, r, seqBoom{}, "explodingInputs")
		if got > 2-k {
			t.Errorf("received %d results before the panic, want at most %d", got, 2-k)
		}
		b.checkAllCancelled(t)
		checkCleanedOnce(t, &clean)
		goleak.VerifyNone(t)
	})
}

type bodyBoom struct{}

func TestAMapPanicInLoopBody(t *testing.T) {
	const n = 6
	forLimitsAndOrders(t, "a panic in the loop body goes through as is after cleanup", func(t *testing.T, lc limitCase, _ bool, opts []trimeter.Option) {
		var b blocker
		fn := func(ctx context.Context, v int) (int, error) {
			if v == 0 {
				return 0, nil
			}
			return 0, b.block(t, ctx)
		}
		p := newProbe(n)
		r := catch(func() {
			for range trimeter.AMap(context.Background(), p.seq(), fn, opts...) {
				b.started.await(t, below(lc.atOnce, n-1), "calls blocked")
				panic(bodyBoom{})
			}
		})
		if r != (bodyBoom{}) {
			t.Errorf("recovered %#v, want the body's own value", r)
		}
		b.checkAllCancelled(t)
		checkCleanedUp(t, p)
	})
}

func TestRunOnEachPanics(t *testing.T) {
	const n = 6
	for _, lc := range limitCases {
		t.Run("a panic in fn reaches the caller once the other calls ended "+lc.name, func(t *testing.T) {
			k := below(lc.atOnce, 2)
			var b blocker
			fn := func(ctx context.Context, v int) error {
				if v == k {
					b.started.await(t, k, "calls blocked")
					detonate(v)
				}
				return b.block(t, ctx)
			}
			p := newProbe(n)
			r := catch(func() { _ = trimeter.RunOnEach(context.Background(), p.seq(), fn, lc.opts...) })
			checkPanicError(t, r, boomValue{k}, "detonate")
			b.checkAllCancelled(t)
			checkCleanedUp(t, p)
		})
		t.Run("a panic in the input reaches the caller once the calls ended "+lc.name, func(t *testing.T) {
			k := below(lc.atOnce, 2)
			var b blocker
			fn := b.below(t, k)
			var clean atomic.Int64
			r := catch(func() {
				_ = trimeter.RunOnEach(context.Background(), explodingInputs(2, seqBoom{}, &clean), fn, lc.opts...)
			})
			checkPanicError(t, r, seqBoom{}, "explodingInputs")
			b.checkAllCancelled(t)
			goleak.VerifyNone(t)
		})
	}
}

// panickyMeter is a WithMeter meter that panics in the method named by
// where ("Acquire", "TryAcquire" or "Done") on its third use.
type panickyMeter struct {
	where string
	uses  atomic.Int64
}

type meterBoom struct{ where string }

func (m *panickyMeter) use(where string) {
	if where == m.where && m.uses.Add(1) == 3 {
		panic(meterBoom{where})
	}
}

func (m *panickyMeter) Acquire(context.Context) (throttle.Permit, error) {
	m.use("Acquire")
	return panickyPermit{m}, nil
}

type panickyPermit struct{ m *panickyMeter }

func (p panickyPermit) Done(throttle.Outcome) { p.m.use("Done") }

// panickyTrier answers TryAcquire too, which the scheduler then prefers.
type panickyTrier struct{ panickyMeter }

func (m *panickyTrier) TryAcquire(context.Context) (throttle.Permit, time.Duration, error) {
	m.use("TryAcquire")
	return panickyPermit{&m.panickyMeter}, 0, nil
}

// panickyKeyed hands each key a panickyMeter, and panics in ForKey for
// the third key.
type panickyKeyed struct {
	panickyMeter
	keys atomic.Int64
}

func (m *panickyKeyed) ForKey(string) throttle.Meter {
	if m.keys.Add(1) == 3 {
		panic(meterBoom{"ForKey"})
	}
	return &panickyMeter{}
}

// nilForKey hands each key a meter (a panickyMeter told no place to
// panic), except key, which gets nil.
type nilForKey struct {
	panickyMeter
	key      string
	typedNil bool // return a nil *throttle.Rate, not a nil interface
}

func (m *nilForKey) ForKey(k string) throttle.Meter {
	if k == m.key && m.typedNil {
		return (*throttle.Rate)(nil)
	}
	if k == m.key {
		return nil
	}
	return &panickyMeter{}
}

// A meter whose Done panics leaves a Watch monitor, which may outlive the
// run, with nothing counted in flight.
func TestMeterDonePanicLeavesTheMonitorSettled(t *testing.T) {
	mon := &throttle.Monitor{}
	r := catch(func() {
		_ = trimeter.RunOnEach(context.Background(), newProbe(20).seq(), func(context.Context, int) error { return nil },
			trimeter.MaxAtOnce(2), trimeter.WithMeter(&panickyMeter{where: "Done"}), trimeter.Watch(mon))
	})
	checkPanicError(t, r, meterBoom{"Done"}, "panicky")
	if s := mon.Stats(); s.InFlight != 0 || s.Finished != s.Started {
		t.Errorf("Stats = %+v, want nothing in flight and every start finished", s)
	}
}

// When one meter panics, the permits the attempt holds from the others are
// given back (Acquire) or done (Done): a shared meter loses no capacity.
func TestMeterPanicGivesBackTheOtherMetersPermits(t *testing.T) {
	for _, where := range []string{"TryAcquire", "Done"} {
		t.Run(where, func(t *testing.T) {
			shared := throttle.NewConcurrency(10)
			var bad throttle.Meter = &panickyMeter{where: "Done"}
			if where == "TryAcquire" {
				bad = &panickyTrier{panickyMeter{where: "TryAcquire"}}
			}
			// shared first for TryAcquire (its permit is taken before the
			// panic), last for Done (its Done comes after the panic).
			meters := []trimeter.Option{trimeter.WithMeter(shared), trimeter.WithMeter(bad)}
			if where == "Done" {
				meters = []trimeter.Option{trimeter.WithMeter(bad), trimeter.WithMeter(shared)}
			}
			opts := append([]trimeter.Option{trimeter.MaxAtOnce(3)}, meters...)
			r := catch(func() {
				_ = trimeter.RunOnEach(context.Background(), newProbe(20).seq(), func(context.Context, int) error { return nil }, opts...)
			})
			checkPanicError(t, r, meterBoom{where}, "panicky")
			if s := shared.Stats(); s.InFlight != 0 {
				t.Errorf("the shared meter has %d permits in flight after the run, want 0", s.InFlight)
			}
		})
	}
}

// failingGiveBack is a meter whose permits call fail when given back
// unused.
type failingGiveBack struct{ fail func() }

func (m failingGiveBack) Acquire(context.Context) (throttle.Permit, error) {
	return failingGiveBackPermit(m), nil
}

func (m failingGiveBack) TryAcquire(context.Context) (throttle.Permit, time.Duration, error) {
	return failingGiveBackPermit(m), 0, nil
}

type failingGiveBackPermit failingGiveBack

func (p failingGiveBackPermit) Done(o throttle.Outcome) {
	if o.Status == throttle.Unused {
		p.fail()
	}
}

// When a meter panics and giving back the permits taken before it panics
// too, or calls runtime.Goexit, the meter's own panic is the one raised:
// the first one.
func TestMeterPanicOutlivesTheGiveBack(t *testing.T) {
	fails := map[string]func(){
		"a panic":  func() { panic(meterBoom{"Done"}) },
		"a Goexit": runtime.Goexit,
	}
	for what, fail := range fails {
		for name, lim := range map[string][]trimeter.Option{"MaxAtOnce(1)": {trimeter.MaxAtOnce(1)}, "MaxAtOnce(3)": {trimeter.MaxAtOnce(3)}} {
			t.Run(what+" in a Done with "+name, func(t *testing.T) {
				p := newProbe(20)
				opts := append(slices.Clone(lim), trimeter.WithMeter(failingGiveBack{fail}), trimeter.WithMeter(&panickyTrier{panickyMeter{where: "TryAcquire"}}))
				r := catch(func() {
					for range trimeter.AMap(context.Background(), p.seq(), square, opts...) {
					}
				})
				checkPanicError(t, r, meterBoom{"TryAcquire"}, "panicky")
				checkCleanedUp(t, p)
			})
		}
	}
}

// A panic in a shared meter, in whichever goroutine calls it, stops the run
// and is raised again in the caller like a panic in fn: it never ends the
// process from a worker.
func TestMeterPanics(t *testing.T) {
	meters := map[string]func() throttle.Meter{
		"Acquire":    func() throttle.Meter { return &panickyMeter{where: "Acquire"} },
		"TryAcquire": func() throttle.Meter { return &panickyTrier{panickyMeter{where: "TryAcquire"}} },
		"Done":       func() throttle.Meter { return &panickyMeter{where: "Done"} },
	}
	for name, lim := range map[string][]trimeter.Option{"MaxAtOnce(3)": {trimeter.MaxAtOnce(3)}, "no MaxAtOnce": nil} {
		t.Run("AMap, a panic in ForKey with "+name, func(t *testing.T) {
			p := newProbe(20)
			opts := append(slices.Clone(lim), trimeter.PerKey(func(v int) int { return v }, trimeter.WithMeter(&panickyKeyed{})))
			r := catch(func() {
				for range trimeter.AMap(context.Background(), p.seq(), square, opts...) {
				}
			})
			checkPanicError(t, r, meterBoom{"ForKey"}, "panicky")
			checkCleanedUp(t, p)
		})
	}
	for name, typedNil := range map[string]bool{"nil": false, "a nil *throttle.Rate": true} {
		t.Run("AMap, "+name+" from ForKey", func(t *testing.T) {
			p := newProbe(20)
			nilFor3 := &nilForKey{key: "3", typedNil: typedNil}
			r := catch(func() {
				for range trimeter.AMap(context.Background(), p.seq(), square, trimeter.MaxAtOnce(3),
					trimeter.PerKey(func(v int) int { return v }, trimeter.WithMeter(nilFor3))) {
				}
			})
			pe, ok := r.(*trimeter.PanicError)
			if !ok {
				t.Fatalf("recovered %T (%v), want *trimeter.PanicError", r, r)
			}
			if msg := fmt.Sprint(pe.Value); !strings.Contains(msg, `nilForKey.ForKey("3") returned a nil meter`) {
				t.Errorf("PanicError.Value = %q, want it to name the meter, the key and the nil", msg)
			}
			checkCleanedUp(t, p)
		})
	}
	// An input of key 0 waits aside while input 2 is pulled, so the turn
	// is lent for that pull when ForKey fails for key 2: the run must
	// still hand the turn back and end.
	for name, keyed := range map[string]func() throttle.Meter{
		"a nil meter": func() throttle.Meter { return &nilForKey{key: "2"} },
		"a panic":     func() throttle.Meter { return &panickyKeyed{} }, // at its third key, 2
	} {
		t.Run("AMap, "+name+" from ForKey while inputs wait aside", func(t *testing.T) {
			for range 20 {
				// Input 2 (key 5) ends while the input after it is pulled,
				// so that its worker waits for the lent turn meanwhile.
				ended := make(chan struct{})
				keys := func(yield func(int) bool) {
					if !yield(0) || !yield(0) || !yield(5) {
						return
					}
					<-ended
					for range 100 {
						runtime.Gosched() // its worker on its way to the turn
					}
					_ = yield(2) && yield(3) && yield(4)
				}
				fn := func(ctx context.Context, v int) (int, error) {
					switch v {
					case 0:
						awaitCancel(t, ctx) // holds key 0, so input 1 waits aside
					case 5:
						close(ended)
					}
					return v, nil
				}
				done := make(chan any, 1)
				go func() {
					done <- catch(func() {
						for range trimeter.AMap(context.Background(), keys, fn, trimeter.MaxAtOnce(4),
							trimeter.PerKey(func(v int) int { return v }, trimeter.MaxAtOnce(1), trimeter.WithMeter(keyed()))) {
						}
					})
				}()
				select {
				case r := <-done:
					if _, ok := r.(*trimeter.PanicError); !ok {
						t.Fatalf("recovered %T (%v), want *trimeter.PanicError", r, r)
					}
				case <-time.After(patience): // a watchdog
					t.Fatal("the run did not end after ForKey failed")
				}
			}
		})
	}
	limits := map[string][]trimeter.Option{
		"MaxAtOnce(1)": {trimeter.MaxAtOnce(1)},
		"MaxAtOnce(3)": {trimeter.MaxAtOnce(3)},
		"no MaxAtOnce": nil,
		"a rate":       {trimeter.MaxAtOnce(2), trimeter.MaxPerSecond(1e6)},
	}
	for where, meter := range meters {
		for name, lim := range limits {
			t.Run("RunOnEach, a panic in "+where+" with "+name, func(t *testing.T) {
				p := newProbe(20)
				opts := append(slices.Clone(lim), trimeter.WithMeter(meter()))
				r := catch(func() {
					_ = trimeter.RunOnEach(context.Background(), p.seq(), func(context.Context, int) error { return nil }, opts...)
				})
				checkPanicError(t, r, meterBoom{where}, "panicky")
				checkCleanedUp(t, p)
			})
			t.Run("AMap, a panic in "+where+" with "+name, func(t *testing.T) {
				p := newProbe(20)
				opts := append(slices.Clone(lim), trimeter.WithMeter(meter()))
				r := catch(func() {
					for range trimeter.AMap(context.Background(), p.seq(), square, opts...) {
					}
				})
				checkPanicError(t, r, meterBoom{where}, "panicky")
				checkCleanedUp(t, p)
			})
		}
	}
}

func TestAMapFailFast(t *testing.T) {
	const n = 8
	forLimitsAndOrders(t, "the first error comes once after the results already delivered", func(t *testing.T, _ limitCase, _ bool, opts []trimeter.Option) {
		// Inputs 0 and 1 succeed; input 2 fails once both results have
		// been received; later inputs block until cancelled, and their
		// context errors must not be reported.
		var received counter
		var b blocker
		fn := func(ctx context.Context, v int) (int, error) {
			switch {
			case v < 2:
				return v, nil
			case v == 2:
				received.await(t, 2, "results received")
				return 0, errBoom
			}
			return 0, b.block(t, ctx)
		}
		p := newProbe(n)
		var got []yielded
		for v, err := range trimeter.AMap(context.Background(), p.seq(), fn, opts...) {
			got = append(got, yielded{v, err})
			if err == nil {
				received.add(1)
			}
		}
		want := []yielded{{0, nil}, {1, nil}, {0, errBoom}}
		slices.SortFunc(got[:min(2, len(got))], func(a, b yielded) int { return a.v - b.v })
		if !slices.Equal(got, want) {
			t.Errorf("yielded %v, want %v (the two results in any order)", got, want)
		}
		b.checkAllCancelled(t)
		checkCleanedUp(t, p)
	})
}

func TestRunOnEachFailFast(t *testing.T) {
	const n = 6
	for _, lc := range limitCases {
		t.Run("the first error cancels the rest and is returned alone "+lc.name, func(t *testing.T) {
			k := below(lc.atOnce, 3) // inputs 0..k-1 block, input k fails
			var b blocker
			fn := func(ctx context.Context, v int) error {
				if v == k {
					b.started.await(t, k, "calls blocked")
					return errBoom
				}
				return b.block(t, ctx)
			}
			p := newProbe(n)
			err := trimeter.RunOnEach(context.Background(), p.seq(), fn, lc.opts...)
			if err != errBoom {
				t.Errorf("got %v, want %v", err, errBoom)
			}
			if lc.atOnce > 0 && p.pulled.Load() != int64(k+1) {
				t.Errorf("pulled %d inputs, want %d: nothing after the failing one", p.pulled.Load(), k+1)
			}
			b.checkAllCancelled(t)
			checkCleanedUp(t, p)
		})
	}
}

func TestAMapParentCancel(t *testing.T) {
	const n = 8
	forLimitsAndOrders(t, "cancelling the parent yields ctx.Err() once and ends", func(t *testing.T, lc limitCase, _ bool, opts []trimeter.Option) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var b blocker
		fn := func(ctx context.Context, v int) (int, error) {
			switch {
			case v < 3:
				return v, nil
			case v == 3:
				cancel()
			}
			return 0, b.block(t, ctx)
		}
		p := newProbe(n)
		got := collect(trimeter.AMap(ctx, p.seq(), fn, opts...))
		if len(got) == 0 || got[len(got)-1] != (yielded{0, context.Canceled}) {
			t.Fatalf("yielded %v, want context.Canceled last", got)
		}
		for _, y := range got[:len(got)-1] {
			if y.err != nil || y.v > 2 {
				t.Errorf("yielded %v before the cancel's error, want only results of inputs 0..2", got)
			}
		}
		if lc.atOnce == 1 && lc.buffer == 0 && len(got) != 4 {
			t.Errorf("yielded %v, want the results of inputs 0..2 first", got)
		}
		b.checkAllCancelled(t)
		checkCleanedUp(t, p)
	})
}

func TestRunOnEachParentCancel(t *testing.T) {
	for _, lc := range limitCases {
		t.Run("cancelling the parent returns ctx.Err() "+lc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var b blocker
			fn := func(ctx context.Context, v int) error {
				if v == 3 {
					cancel()
				}
				if v < 3 {
					return nil
				}
				return b.block(t, ctx)
			}
			p := newProbe(8)
			if err := trimeter.RunOnEach(ctx, p.seq(), fn, lc.opts...); err != context.Canceled {
				t.Errorf("got %v, want context.Canceled", err)
			}
			b.checkAllCancelled(t)
			checkCleanedUp(t, p)
		})
	}
}

func TestCancelledBeforeTheStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	checkCtx := func(ctx context.Context, v int) (int, error) { return v, ctx.Err() }
	t.Run("AMap yields ctx.Err() once", func(t *testing.T) {
		got := collect(trimeter.AMap(ctx, newProbe(5).seq(), checkCtx, trimeter.MaxAtOnce(2)))
		if want := []yielded{{0, context.Canceled}}; !slices.Equal(got, want) {
			t.Errorf("yielded %v, want %v", got, want)
		}
	})
	t.Run("RunOnEach returns ctx.Err()", func(t *testing.T) {
		fn := func(ctx context.Context, v int) error { _, err := checkCtx(ctx, v); return err }
		if err := trimeter.RunOnEach(ctx, newProbe(5).seq(), fn); err != context.Canceled {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})
}

// An entry point of the package, seen through one shape so that the same
// table of bad options runs against each.
type entryPoint struct {
	name string
	// call runs the entry point over inputs and fn and returns the error
	// it reported; it fails t if the entry point reported more than that
	// one error or any result.
	call func(t *testing.T, inputs iter.Seq[int], fn func(context.Context, int) (int, error), opts ...trimeter.Option) error
}

// tasks turns inputs into functions for RunAll and RunAny.
func tasks(inputs iter.Seq[int], fn func(context.Context, int) (int, error)) iter.Seq[func(context.Context) (int, error)] {
	if inputs == nil {
		return nil
	}
	return func(yield func(func(context.Context) (int, error)) bool) {
		for v := range inputs {
			if !yield(func(ctx context.Context) (int, error) { return fn(ctx, v) }) {
				return
			}
		}
	}
}

var entryPoints = []entryPoint{
	{"RunOnEach", func(t *testing.T, inputs iter.Seq[int], fn func(context.Context, int) (int, error), opts ...trimeter.Option) error {
		var each func(context.Context, int) error
		if fn != nil {
			each = func(ctx context.Context, v int) error { _, err := fn(ctx, v); return err }
		}
		return trimeter.RunOnEach(context.Background(), inputs, each, opts...)
	}},
	{"AMap", func(t *testing.T, inputs iter.Seq[int], fn func(context.Context, int) (int, error), opts ...trimeter.Option) error {
		got := collect(trimeter.AMap(context.Background(), inputs, fn, opts...))
		if len(got) != 1 || got[0].v != 0 {
			t.Errorf("yielded %v, want one error alone", got)
			return nil
		}
		return got[0].err
	}},
	{"Outcomes", func(t *testing.T, inputs iter.Seq[int], fn func(context.Context, int) (int, error), opts ...trimeter.Option) error {
		return soleRunError(t, trimeter.Outcomes(context.Background(), inputs, fn, opts...))
	}},
	{"RunAll", func(t *testing.T, inputs iter.Seq[int], fn func(context.Context, int) (int, error), opts ...trimeter.Option) error {
		got, err := trimeter.RunAll(context.Background(), tasks(inputs, fn), opts...)
		if got != nil {
			t.Errorf("returned results %v beside the error", got)
		}
		return err
	}},
	{"RunAny", func(t *testing.T, inputs iter.Seq[int], fn func(context.Context, int) (int, error), opts ...trimeter.Option) error {
		got, err := trimeter.RunAny(context.Background(), tasks(inputs, fn), opts...)
		if got != 0 {
			t.Errorf("returned result %v beside the error", got)
		}
		return err
	}},
}

func TestBadOptions(t *testing.T) {
	cases := []struct {
		opt  trimeter.Option
		want string
	}{
		{trimeter.MaxAtOnce(0), "MaxAtOnce(0)"},
		{trimeter.MaxAtOnce(-2), "MaxAtOnce(-2)"},
		{trimeter.MaxPerSecond(0), "MaxPerSecond(0)"},
		{trimeter.MaxPerSecond(-1), "MaxPerSecond(-1)"},
		{trimeter.MaxPerSecond(math.NaN()), "MaxPerSecond(NaN)"},
		{trimeter.MaxPerSecond(math.Inf(1)), "MaxPerSecond(+Inf)"},
		{trimeter.MaxPerSecond(math.Inf(-1)), "MaxPerSecond(-Inf)"},
		{trimeter.MaxBurst(0), "MaxBurst(0)"},
		{trimeter.BufferSize(-1), "BufferSize(-1)"},
		{trimeter.Retry(0), "Retry(0)"},
		{trimeter.Retry(-1), "Retry(-1)"},
		{trimeter.Lookahead(0), "Lookahead(0)"},
		{trimeter.WithMeter(nil), "WithMeter(nil)"},
		{trimeter.WithClock(nil), "WithClock(nil)"},
		{trimeter.WithClock((*clockwork.FakeClock)(nil)), "WithClock(nil)"},
		{trimeter.WithMeter((*throttle.Rate)(nil)), "WithMeter(nil)"},
		{trimeter.MaxPerSecond(1e-7), "slowest rate"},
		{trimeter.WithMeter(throttle.NewRate(-1, 1)), "WithMeter(*throttle.Rate)"},
		{nil, "nil"},
	}
	for _, ep := range entryPoints {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s reports %s and runs nothing", ep.name, c.want), func(t *testing.T) {
				p := newProbe(3)
				var calls atomic.Int64
				fn := func(context.Context, int) (int, error) { calls.Add(1); return 0, nil }
				// A valid option first: a bad one is found wherever it is.
				err := ep.call(t, p.seq(), fn, trimeter.MaxAtOnce(2), c.opt)
				checkBadOption(t, err, c.want)
				if calls.Load() != 0 || p.pulled.Load() != 0 {
					t.Errorf("fn called %d times, %d inputs pulled; want none", calls.Load(), p.pulled.Load())
				}
			})
		}
		t.Run(ep.name+" reports a meter given twice and runs nothing", func(t *testing.T) {
			rate := throttle.NewRate(1, 2)
			twice := [][]trimeter.Option{
				{trimeter.WithMeter(rate), trimeter.MaxAtOnce(2), trimeter.WithMeter(rate)},
				{trimeter.PerKey(func(v int) int { return v }, trimeter.WithMeter(rate), trimeter.WithMeter(rate))},
			}
			for _, opts := range twice {
				p := newProbe(3)
				var calls atomic.Int64
				fn := func(context.Context, int) (int, error) { calls.Add(1); return 0, nil }
				checkBadOption(t, ep.call(t, p.seq(), fn, opts...), "WithMeter(*throttle.Rate): the same meter is given twice")
				if calls.Load() != 0 || p.pulled.Load() != 0 {
					t.Errorf("fn called %d times, %d inputs pulled; want none", calls.Load(), p.pulled.Load())
				}
			}
		})
		t.Run(ep.name+" reports a bad rate or burst that a later one replaced", func(t *testing.T) {
			key := func(v int) int { return v }
			for _, c := range []struct {
				opts []trimeter.Option
				want string
			}{
				{[]trimeter.Option{trimeter.MaxPerSecond(1e-7), trimeter.MaxPerSecond(1000)}, "MaxPerSecond(1e-07)"},
				{[]trimeter.Option{trimeter.PerKey(key, trimeter.MaxPerSecond(1e-7), trimeter.MaxPerSecond(1000))}, "PerKey: MaxPerSecond(1e-07)"},
				// MaxInt tokens at 1/s take over 68 years to fill, however wide int is.
				{[]trimeter.Option{trimeter.MaxPerSecond(1), trimeter.MaxBurst(math.MaxInt), trimeter.MaxBurst(1)}, fmt.Sprintf("MaxPerSecond(1) with MaxBurst(%d)", math.MaxInt)},
				{[]trimeter.Option{trimeter.PerKey(key, trimeter.MaxBurst(math.MaxInt), trimeter.MaxPerSecond(1), trimeter.MaxBurst(1))}, fmt.Sprintf("PerKey: MaxPerSecond(1) with MaxBurst(%d)", math.MaxInt)},
			} {
				if strings.HasPrefix(c.want, "PerKey") && (ep.name == "RunAll" || ep.name == "RunAny") {
					continue // their inputs are functions, which an int key does not fit
				}
				p := newProbe(3)
				var calls atomic.Int64
				fn := func(context.Context, int) (int, error) { calls.Add(1); return 0, nil }
				checkBadOption(t, ep.call(t, p.seq(), fn, c.opts...), c.want)
				if calls.Load() != 0 || p.pulled.Load() != 0 {
					t.Errorf("%s: fn called %d times, %d inputs pulled; want none", c.want, calls.Load(), p.pulled.Load())
				}
			}
		})
		t.Run(ep.name+" reports a nil input sequence", func(t *testing.T) {
			checkBadOption(t, ep.call(t, nil, square), "nil")
		})
		if ep.name != "RunAll" && ep.name != "RunAny" {
			t.Run(ep.name+" reports a nil fn and pulls nothing", func(t *testing.T) {
				p := newProbe(3)
				checkBadOption(t, ep.call(t, p.seq(), nil), "fn is nil")
				if p.pulled.Load() != 0 {
					t.Errorf("%d inputs pulled, want none", p.pulled.Load())
				}
			})
		}
	}
}

// Two meters alike are two meters, not one given twice.
func TestTwoMetersAlikeAreNotOneGivenTwice(t *testing.T) {
	fn := func(context.Context, int) error { return nil }
	err := trimeter.RunOnEach(context.Background(), newProbe(3).seq(), fn,
		trimeter.WithMeter(throttle.NewConcurrency(2)), trimeter.WithMeter(throttle.NewConcurrency(2)))
	if err != nil {
		t.Fatalf("two meters alike: %v", err)
	}
	err = trimeter.RunOnEach(context.Background(), newProbe(3).seq(), fn,
		trimeter.WithMeter(make(chanSemaphore, 1)), trimeter.WithMeter(make(chanSemaphore, 1)))
	if err != nil {
		t.Fatalf("two channel meters: %v", err)
	}
}

// A meter that is a channel (Go's usual semaphore), given twice, is one
// meter given twice: an attempt would hold its one permit while it waits
// for another.
func TestChannelMeterGivenTwice(t *testing.T) {
	sem := make(chanSemaphore, 1)
	p := newProbe(3)
	fn := func(context.Context, int) error { return nil }
	err := trimeter.RunOnEach(context.Background(), p.seq(), fn, trimeter.WithMeter(sem), trimeter.WithMeter(sem))
	checkBadOption(t, err, "WithMeter(trimeter_test.chanSemaphore): the same meter is given twice")
	if p.pulled.Load() != 0 {
		t.Errorf("%d inputs pulled, want none", p.pulled.Load())
	}
}

// chanSemaphore is a meter that is a channel: a permit is a slot in it.
type chanSemaphore chan struct{}

func (s chanSemaphore) Acquire(ctx context.Context) (throttle.Permit, error) {
	select {
	case s <- struct{}{}:
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s chanSemaphore) Done(throttle.Outcome) { <-s }

func checkBadOption(t *testing.T, err error, want string) {
	t.Helper()
	if !errors.Is(err, trimeter.ErrBadOption) {
		t.Fatalf("got %v, want an error wrapping ErrBadOption", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %s", err, want)
	}
}

// brokenMeter is a meter built with a bad value: it says so through Err.
type brokenMeter struct {
	err      error
	acquired atomic.Int64
}

func (m *brokenMeter) Acquire(context.Context) (throttle.Permit, error) {
	m.acquired.Add(1)
	return nil, m.err
}

func (m *brokenMeter) Err() error { return m.err }

func TestMeterWithAnErrorEndsTheCallBeforeAnythingRuns(t *testing.T) {
	for _, ep := range entryPoints {
		t.Run(ep.name+" reports the meter's error", func(t *testing.T) {
			m := &brokenMeter{err: errors.New("meter: rate must be positive")}
			p := newProbe(3)
			var calls atomic.Int64
			fn := func(context.Context, int) (int, error) { calls.Add(1); return 0, nil }
			err := ep.call(t, p.seq(), fn, trimeter.WithMeter(m))
			if !errors.Is(err, m.err) {
				t.Errorf("got %v, want the meter's error", err)
			}
			checkBadOption(t, err, "WithMeter(*trimeter_test.brokenMeter)")
			if calls.Load() != 0 || p.pulled.Load() != 0 || m.acquired.Load() != 0 {
				t.Errorf("fn called %d times, %d inputs pulled, %d permits asked; want none",
					calls.Load(), p.pulled.Load(), m.acquired.Load())
			}
		})
	}
}

// The zero value of a throttle meter is a bad value: WithMeter reports it
// before anything runs, as it does a meter built with a bad value.
func TestZeroValueMeterIsABadOption(t *testing.T) {
	for _, m := range []throttle.Meter{&throttle.Rate{}, &throttle.Concurrency{}, &throttle.Adaptive{}} {
		t.Run(fmt.Sprintf("%T", m), func(t *testing.T) {
			p := newProbe(2)
			var calls atomic.Int64
			err := trimeter.RunOnEach(context.Background(), p.seq(), func(context.Context, int) error {
				calls.Add(1)
				return nil
			}, trimeter.WithMeter(m))
			checkBadOption(t, err, fmt.Sprintf("WithMeter(%T)", m))
			if !errors.Is(err, throttle.ErrBadValue) || calls.Load() != 0 || p.pulled.Load() != 0 {
				t.Errorf("RunOnEach = %v, with %d calls and %d inputs pulled; want a bad value and nothing run", err, calls.Load(), p.pulled.Load())
			}
		})
	}
}

func TestInfiniteInput(t *testing.T) {
	t.Run("AMap over an endless input stops at a break", func(t *testing.T) {
		p := newProbe(-1)
		got := 0
		for _, err := range trimeter.AMap(context.Background(), p.seq(), square, trimeter.MaxAtOnce(3)) {
			if err != nil {
				t.Errorf("unexpected error %v", err)
			}
			if got++; got == 50 {
				break
			}
		}
		if p.pulled.Load() > 50+3+1 {
			t.Errorf("pulled %d inputs for 50 results, want at most 54", p.pulled.Load())
		}
		checkCleanedUp(t, p)
	})
	t.Run("RunOnEach over an endless input ends at the first error", func(t *testing.T) {
		p := newProbe(-1)
		fn := func(_ context.Context, v int) error {
			if v == 100 {
				return errBoom
			}
			return nil
		}
		if err := trimeter.RunOnEach(context.Background(), p.seq(), fn, trimeter.MaxAtOnce(4)); err != errBoom {
			t.Errorf("got %v, want %v", err, errBoom)
		}
		checkCleanedUp(t, p)
	})
}

// TestAMapWindow runs AMap with a consumer that, after each result, waits
// until every task the window allows has started and finished; it checks
// the laziness bound at every pull and the slot bound at every start.
func TestAMapWindow(t *testing.T) {
	const n = 12
	forLimitsAndOrders(t, "inputs are pulled lazily and slots are held until delivery", func(t *testing.T, lc limitCase, _ bool, opts []trimeter.Option) {
		window := lc.atOnce + lc.buffer
		if lc.atOnce == 0 {
			window = n // no limit: everything may start before the first delivery
		}
		var received, started, finished counter
		p := newProbe(n)
		p.onPull = func(i int) {
			if ahead := int(p.pulled.Load()) - received.load(); lc.atOnce > 0 && ahead > window+1 {
				t.Errorf("input %d pulled %d beyond the results received, want at most %d", i, ahead, window+1)
			}
		}
		fn := func(_ context.Context, v int) (int, error) {
			if s := started.add(1); s > received.load()+window+1 {
				t.Errorf("input %d started with %d tasks undelivered, want at most %d", v, s-received.load(), window+1)
			}
			defer finished.add(1)
			return v, nil
		}
		for _, err := range trimeter.AMap(context.Background(), p.seq(), fn, opts...) {
			if err != nil {
				t.Errorf("unexpected error %v", err)
			}
			r := received.add(1)
			limit := min(n, r+window)
			// With one slot and no buffer the loop itself may run the
			// tasks, one per result it asks for; otherwise the tasks the
			// window allows run while the loop is busy.
			if lc.atOnce != 1 || lc.buffer != 0 {
				started.await(t, limit, "tasks started while the consumer is busy")
				finished.await(t, limit, "tasks finished while the consumer is busy")
				if s := started.load(); s != limit {
					t.Errorf("after %d results, %d tasks started, want %d", r, s, limit)
				}
			} else if s := started.load(); s > limit {
				t.Errorf("after %d results, %d tasks started, want at most %d", r, s, limit)
			}
		}
		if received.load() != n {
			t.Errorf("received %d results, want %d", received.load(), n)
		}
	})
}

// Every input held has a slot of its own, taken before it is pulled: the
// inputs pulled, counting the one being pulled, never outnumber the calls
// finished by more than MaxAtOnce, on each path (the serial worker, the
// feeder's queue, and the starter that a rate sends inputs through).
func TestRunOnEachPullsLazily(t *testing.T) {
	for _, c := range []struct {
		m    int
		rate bool
	}{{1, false}, {3, false}, {8, false}, {3, true}} {
		m := c.m
		opts := []trimeter.Option{trimeter.MaxAtOnce(m)}
		if c.rate {
			opts = append(opts, trimeter.MaxPerSecond(1e9)) // never waits: it only routes the run through the starter
		}
		t.Run(fmt.Sprintf("with MaxAtOnce(%d), rate %v, at most %d inputs are pulled beyond the calls finished", m, c.rate, m), func(t *testing.T) {
			var finished atomic.Int64
			p := newProbe(40)
			p.onPull = func(i int) {
				if ahead := p.pulled.Load() - finished.Load(); ahead > int64(m) {
					t.Errorf("input %d pulled %d beyond the calls finished", i, ahead)
				}
			}
			fn := func(context.Context, int) error { finished.Add(1); return nil }
			if err := trimeter.RunOnEach(context.Background(), p.seq(), fn, opts...); err != nil {
				t.Errorf("unexpected error %v", err)
			}
			if p.pulled.Load() != 40 || finished.Load() != 40 {
				t.Errorf("pulled %d and ran %d inputs, want 40", p.pulled.Load(), finished.Load())
			}
		})
	}
}

func TestMaxAtOnceIsReachedAndNeverExceeded(t *testing.T) {
	const n = 12
	forLimitsAndOrders(t, "AMap runs exactly as many calls at once as allowed", func(t *testing.T, lc limitCase, _ bool, opts []trimeter.Option) {
		limit := lc.atOnce
		if limit == 0 {
			limit = n
		}
		var g gauge
		b := newBarrier(limit)
		fn := func(_ context.Context, v int) (int, error) {
			g.enter()
			defer g.leave()
			b.wait(t)
			return v, nil
		}
		if got := collect(trimeter.AMap(context.Background(), newProbe(n).seq(), fn, opts...)); len(got) != n {
			t.Errorf("yielded %d results, want %d", len(got), n)
		}
		if g.peak.Load() != int64(limit) {
			t.Errorf("peak of %d calls at once, want %d", g.peak.Load(), limit)
		}
	})
	for _, lc := range limitCases {
		t.Run("RunOnEach runs exactly as many calls at once as allowed "+lc.name, func(t *testing.T) {
			limit := lc.atOnce
			if limit == 0 {
				limit = n
			}
			var g gauge
			b := newBarrier(limit)
			fn := func(context.Context, int) error {
				g.enter()
				defer g.leave()
				b.wait(t)
				return nil
			}
			if err := trimeter.RunOnEach(context.Background(), newProbe(n).seq(), fn, lc.opts...); err != nil {
				t.Errorf("unexpected error %v", err)
			}
			if g.peak.Load() != int64(limit) {
				t.Errorf("peak of %d calls at once, want %d", g.peak.Load(), limit)
			}
		})
	}
}

func TestSharedConcurrencyMeterAcrossCalls(t *testing.T) {
	meter := throttle.NewConcurrency(3)
	var g gauge
	b := newBarrier(3)
	work := func() {
		g.enter()
		defer g.leave()
		b.wait(t)
	}
	done := make(chan error, 2)
	go func() {
		done <- trimeter.RunOnEach(context.Background(), newProbe(10).seq(),
			func(context.Context, int) error { work(); return nil }, trimeter.WithMeter(meter))
	}()
	go func() {
		var err error
		for _, e := range trimeter.AMap(context.Background(), newProbe(10).seq(),
			func(_ context.Context, v int) (int, error) { work(); return v, nil }, trimeter.WithMeter(meter), trimeter.MaxAtOnce(2)) {
			err = errors.Join(err, e)
		}
		done <- err
	}()
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("unexpected error %v", err)
		}
	}
	if g.peak.Load() != 3 {
		t.Errorf("peak of %d calls at once over both calls, want the meter's 3", g.peak.Load())
	}
}

func TestOrderedFollowsInputOrder(t *testing.T) {
	const n = 30
	for _, lc := range limitCases {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("results of random durations come in input order %s (seed %d)", lc.name, seed), func(t *testing.T) {
				clk := newFakeClock()
				stop := drive(clk, time.Millisecond)
				defer stop()
				ds := durations(seed, n, time.Millisecond, 20)
				fn := func(_ context.Context, v int) (int, error) {
					clk.Sleep(ds[v])
					return v * v, nil
				}
				opts := append(slices.Clone(lc.opts), trimeter.Ordered())
				var got []int
				for v, err := range trimeter.AMap(context.Background(), newProbe(n).seq(), fn, opts...) {
					if err != nil {
						t.Errorf("unexpected error %v", err)
					}
					got = append(got, v)
				}
				for i, v := range got {
					if v != i*i {
						t.Fatalf("yielded %v, want the squares of 0..%d in order", got, n-1)
					}
				}
				if len(got) != n {
					t.Errorf("yielded %d results, want %d", len(got), n)
				}
			})
		}
	}
}

func TestAMapUnorderedDeliversEachResultOnce(t *testing.T) {
	const n = 30
	for _, lc := range limitCases {
		t.Run("each result comes exactly once "+lc.name, func(t *testing.T) {
			clk := newFakeClock()
			stop := drive(clk, time.Millisecond)
			defer stop()
			ds := durations(7, n, time.Millisecond, 20)
			fn := func(_ context.Context, v int) (int, error) {
				clk.Sleep(ds[v])
				return v, nil
			}
			var got []int
			for v, err := range trimeter.AMap(context.Background(), newProbe(n).seq(), fn, lc.opts...) {
				if err != nil {
					t.Errorf("unexpected error %v", err)
				}
				got = append(got, v)
			}
			slices.Sort(got)
			for i, v := range got {
				if v != i {
					t.Fatalf("yielded %v once sorted, want 0..%d", got, n-1)
				}
			}
			if len(got) != n {
				t.Errorf("yielded %d results, want %d", len(got), n)
			}
		})
	}
}

func TestOrderedSlowHeadKeepsTheWindowBounded(t *testing.T) {
	const n = 20
	for _, lc := range limitCases {
		if lc.atOnce == 0 {
			continue
		}
		window := lc.atOnce + lc.buffer
		if lc.atOnce == 1 {
			window = 1 // the head holds the only slot: nothing starts behind it
		}
		t.Run(fmt.Sprintf("no more than %d tasks start while the head is slow %s", window, lc.name), func(t *testing.T) {
			head := make(chan struct{})
			var released atomic.Bool
			var started, finished counter
			fn := func(_ context.Context, v int) (int, error) {
				if s := started.add(1); s > window && !released.Load() {
					t.Errorf("input %d started while the head is slow, beyond the window of %d", v, window)
				}
				defer finished.add(1)
				if v == 0 {
					<-head
				}
				return v, nil
			}
			go func() {
				defer close(head)
				defer released.Store(true)
				started.await(t, window, "tasks started behind the slow head")
				finished.await(t, window-1, "tasks finished behind the slow head")
				if s := started.load(); s != window {
					t.Errorf("%d tasks started behind the slow head, want %d", s, window)
				}
			}()
			opts := append(slices.Clone(lc.opts), trimeter.Ordered())
			i := 0
			for v, err := range trimeter.AMap(context.Background(), newProbe(n).seq(), fn, opts...) {
				if v != i || err != nil {
					t.Errorf("yielded (%d, %v), want (%d, nil)", v, err, i)
				}
				i++
			}
			if i != n {
				t.Errorf("yielded %d results, want %d", i, n)
			}
		})
	}
}

func TestEachRangeRunsAfresh(t *testing.T) {
	p := newProbe(5)
	var calls atomic.Int64
	fn := func(_ context.Context, v int) (int, error) { calls.Add(1); return v * v, nil }
	results := trimeter.AMap(context.Background(), p.seq(), fn, trimeter.MaxAtOnce(2), trimeter.Ordered())
	for round := 1; round <= 2; round++ {
		var got []int
		for v, err := range results {
			if err != nil {
				t.Errorf("unexpected error %v", err)
			}
			got = append(got, v)
		}
		if !slices.Equal(got, []int{0, 1, 4, 9, 16}) {
			t.Errorf("round %d yielded %v, want [0 1 4 9 16]", round, got)
		}
	}
	if calls.Load() != 10 || p.pulled.Load() != 10 || p.clean.Load() != 2 {
		t.Errorf("fn called %d times, %d inputs pulled, input ranged %d times; want 10, 10, 2",
			calls.Load(), p.pulled.Load(), p.clean.Load())
	}
}

// oddError is the failure of an odd input.
type oddError struct{ v int }

func (e oddError) Error() string { return fmt.Sprintf("input %d is odd", e.v) }

func TestKeepGoing(t *testing.T) {
	const n = 12
	t.Run("RunOnEach runs every input and joins the failures in input order", func(t *testing.T) {
		clk := newFakeClock()
		stop := drive(clk, time.Millisecond)
		defer stop()
		ds := durations(3, n, time.Millisecond, 20)
		var calls atomic.Int64
		fn := func(_ context.Context, v int) error {
			calls.Add(1)
			clk.Sleep(ds[v])
			if v%2 == 1 {
				return oddError{v}
			}
			return nil
		}
		err := trimeter.RunOnEach(context.Background(), newProbe(n).seq(), fn, trimeter.MaxAtOnce(4), trimeter.KeepGoing())
		checkItemErrors(t, err, []int{1, 3, 5, 7, 9, 11})
		if calls.Load() != n {
			t.Errorf("fn called %d times, want %d", calls.Load(), n)
		}
	})
	forLimitsAndOrders(t, "AMap yields each error and goes on", func(t *testing.T, _ limitCase, _ bool, opts []trimeter.Option) {
		fn := func(_ context.Context, v int) (int, error) {
			if v%2 == 1 {
				return 0, oddError{v}
			}
			return v, nil
		}
		var values, failed []int
		for v, err := range trimeter.AMap(context.Background(), newProbe(n).seq(), fn, append(opts, trimeter.KeepGoing())...) {
			var odd oddError
			if errors.As(err, &odd) {
				failed = append(failed, odd.v)
			} else {
				values = append(values, v)
			}
		}
		slices.Sort(values)
		slices.Sort(failed)
		if !slices.Equal(values, []int{0, 2, 4, 6, 8, 10}) || !slices.Equal(failed, []int{1, 3, 5, 7, 9, 11}) {
			t.Errorf("values %v and failures %v, want the even and the odd inputs", values, failed)
		}
	})
}

// checkItemErrors asserts that err joins one *trimeter.ItemError for each
// of indexes, in that order, each wrapping the oddError of its input.
func checkItemErrors(t *testing.T, err error, indexes []int) {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("got %v, want a joined error", err)
	}
	var got []int
	for _, e := range joined.Unwrap() {
		var ie *trimeter.ItemError
		var odd oddError
		if !errors.As(e, &ie) || !errors.As(ie.Err, &odd) || odd.v != ie.Index {
			t.Errorf("joined error %v is not an ItemError with its input's index", e)
			continue
		}
		got = append(got, ie.Index)
	}
	if !slices.Equal(got, indexes) {
		t.Errorf("errors at indexes %v, want %v", got, indexes)
	}
}

// rateRunners run fn over inputs through each entry point that takes a
// MaxPerSecond limit.
var rateRunners = []struct {
	name string
	run  func(t *testing.T, inputs iter.Seq[int], fn func(context.Context, int) error, opts ...trimeter.Option)
}{
	{"RunOnEach", func(t *testing.T, inputs iter.Seq[int], fn func(context.Context, int) error, opts ...trimeter.Option) {
		if err := trimeter.RunOnEach(context.Background(), inputs, fn, opts...); err != nil {
			t.Errorf("unexpected error %v", err)
		}
	}},
	{"AMap", func(t *testing.T, inputs iter.Seq[int], fn func(context.Context, int) error, opts ...trimeter.Option) {
		mapped := func(ctx context.Context, v int) (int, error) { return v, fn(ctx, v) }
		for _, err := range trimeter.AMap(context.Background(), inputs, mapped, opts...) {
			if err != nil {
				t.Errorf("unexpected error %v", err)
			}
		}
	}},
	{"AMap under Ordered", func(t *testing.T, inputs iter.Seq[int], fn func(context.Context, int) error, opts ...trimeter.Option) {
		mapped := func(ctx context.Context, v int) (int, error) { return v, fn(ctx, v) }
		for _, err := range trimeter.AMap(context.Background(), inputs, mapped, append(opts, trimeter.Ordered())...) {
			if err != nil {
				t.Errorf("unexpected error %v", err)
			}
		}
	}},
}

func TestRateIsReachedAndNeverExceeded(t *testing.T) {
	cases := []struct {
		about  string
		rate   float64
		burst  int // 0 leaves the default, 1
		n      int
		atOnce int // MaxAtOnce, or 0 for none
		buffer int
	}{
		{"4 per second one at a time", 4, 0, 12, 1, 0},
		{"4 per second with no limit on concurrency", 4, 0, 12, 0, 0},
		{"10 per second in bursts of 3 two at a time", 10, 3, 15, 2, 0},
		{"2 per second in bursts of 5 three at a time with a buffer", 2, 5, 14, 3, 2},
		{"0.2 per second, one every 5 s", 0.2, 0, 5, 0, 0},
		{"0.2 per second in bursts of 2 one at a time", 0.2, 2, 6, 1, 0},
	}
	for _, r := range rateRunners {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s holds %s", r.name, c.about), func(t *testing.T) {
				clk := newFakeClock()
				log := &startLog{clk: clk}
				opts := []trimeter.Option{trimeter.MaxPerSecond(c.rate), trimeter.WithClock(clk), trimeter.BufferSize(c.buffer)}
				if c.burst > 0 {
					opts = append(opts, trimeter.MaxBurst(c.burst))
				}
				if c.atOnce > 0 {
					opts = append(opts, trimeter.MaxAtOnce(c.atOnce))
				}
				// With one task at a time, fn sees the instant its task
				// was let through; otherwise a shared meter notes it.
				oneAtATime := c.atOnce == 1
				if !oneAtATime {
					opts = append(opts, trimeter.WithMeter(log))
				}
				var calls atomic.Int64
				fn := func(context.Context, int) error {
					if calls.Add(1); oneAtATime {
						log.add(clk.Since(epoch))
					}
					return nil
				}
				step := time.Duration(float64(time.Second)/c.rate) / 4
				stop := drive(clk, step)
				r.run(t, newProbe(c.n).seq(), fn, opts...)
				stop()
				starts := log.sorted()
				if len(starts) != c.n || calls.Load() != int64(c.n) {
					t.Fatalf("%d starts noted, %d calls, want %d", len(starts), calls.Load(), c.n)
				}
				checkRate(t, starts, c.rate, max(c.burst, 1), step)
			})
		}
	}
}

// MaxPerSecond takes any positive, finite rate: one faster than a bucket
// keeps (10⁹ per second) runs as the fastest, on the real clock too, where
// the default bucket is sized from the rate.
func TestRateAboveTheFastestRuns(t *testing.T) {
	for _, rate := range []float64{2e9, 1e300, math.MaxFloat64} {
		var calls atomic.Int64
		fn := func(context.Context, int) error { calls.Add(1); return nil }
		err := trimeter.RunOnEach(context.Background(), newProbe(100).seq(), fn, trimeter.MaxPerSecond(rate), trimeter.MaxAtOnce(4))
		if err != nil || calls.Load() != 100 {
			t.Errorf("MaxPerSecond(%g): %d calls, error %v; want 100 and nil", rate, calls.Load(), err)
		}
	}
}

// MaxAtOnce + BufferSize is the window of inputs pulled beyond the results
// received; a sum past math.MaxInt leaves the limit alone as the bound
// instead of a window that never has room.
func TestWindowPastMaxInt(t *testing.T) {
	cases := []struct {
		name string
		opts []trimeter.Option
	}{
		{"MaxAtOnce(8) and BufferSize(MaxInt)", []trimeter.Option{trimeter.MaxAtOnce(8), trimeter.BufferSize(math.MaxInt)}},
		{"MaxAtOnce(1) and BufferSize(MaxInt)", []trimeter.Option{trimeter.MaxAtOnce(1), trimeter.BufferSize(math.MaxInt)}},
		{"MaxAtOnce(MaxInt) and BufferSize(1)", []trimeter.Option{trimeter.MaxAtOnce(math.MaxInt), trimeter.BufferSize(1)}},
		{"MaxAtOnce(3), BufferSize(MaxInt), Ordered and a rate", []trimeter.Option{
			trimeter.MaxAtOnce(3), trimeter.BufferSize(math.MaxInt), trimeter.Ordered(), trimeter.MaxPerSecond(1e6)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The watchdog turns a run that never starts a task into a
			// failure instead of a hang.
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			got := collect(trimeter.AMap(ctx, newProbe(20).seq(), square, c.opts...))
			if len(got) != 20 {
				t.Fatalf("yielded %v, want the 20 squares", got)
			}
			for _, y := range got {
				if y.err != nil {
					t.Fatalf("yielded %v, want no error", got)
				}
			}
		})
	}
}

func TestKeepGoingParentCancelEndsWithCtxErr(t *testing.T) {
	// The parent ends while the tasks are failing with its error: the run
	// must end with ctx.Err(), whether or not its own watcher of the
	// parent has run by then.
	t.Run("RunOnEach under KeepGoing returns ctx.Err()", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		fn := func(ctx context.Context, v int) error {
			cancel()
			return ctx.Err()
		}
		err := trimeter.RunOnEach(ctx, newProbe(1).seq(), fn, trimeter.MaxAtOnce(1), trimeter.KeepGoing())
		if err != context.Canceled {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})
	t.Run("AMap under KeepGoing yields ctx.Err() last", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		fn := func(ctx context.Context, v int) (int, error) {
			cancel()
			return 0, ctx.Err()
		}
		got := collect(trimeter.AMap(ctx, newProbe(1).seq(), fn, trimeter.MaxAtOnce(1), trimeter.KeepGoing()))
		if len(got) == 0 || got[len(got)-1] != (yielded{0, context.Canceled}) || len(got) > 2 {
			t.Errorf("yielded %v, want the run to end with context.Canceled", got)
		}
	})
}

func TestAMapFailFastDeliversTheResultsFinishedBeforeTheError(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("Ordered %v", ordered), func(t *testing.T) {
			// One task at a time and two results in the buffer: inputs 1
			// and 2 finish while the loop holds result 0, then input 3
			// fails. The loop goes on once the failure has stopped the
			// run (its context ended), and still gets 1 and 2 first.
			failed := make(chan context.Context, 1)
			fn := func(ctx context.Context, v int) (int, error) {
				if v == 3 {
					failed <- ctx
					return 0, errBoom
				}
				return v, nil
			}
			opts := []trimeter.Option{trimeter.MaxAtOnce(1), trimeter.BufferSize(2)}
			if ordered {
				opts = append(opts, trimeter.Ordered())
			}
			p := newProbe(6)
			var got []yielded
			for v, err := range trimeter.AMap(context.Background(), p.seq(), fn, opts...) {
				if len(got) == 0 {
					<-(<-failed).Done()
				}
				got = append(got, yielded{v, err})
			}
			if want := []yielded{{0, nil}, {1, nil}, {2, nil}, {0, errBoom}}; !slices.Equal(got, want) {
				t.Errorf("yielded %v, want %v", got, want)
			}
			checkCleanedUp(t, p)
		})
	}
}

// A panic of a nested call comes out of the outer one as the panic it
// was: one *PanicError, with the innermost value and stack.
func TestNestedPanicComesOutOnce(t *testing.T) {
	inner := func(ctx context.Context, v int) (int, error) { panic("inner") }
	outer := func(ctx context.Context, v int) (int, error) {
		for r, err := range trimeter.AMap(ctx, newProbe(1).seq(), inner) {
			return r, err
		}
		return 0, nil
	}
	v := catch(func() {
		for range trimeter.AMap(context.Background(), newProbe(2).seq(), outer, trimeter.MaxAtOnce(2)) {
		}
	})
	pe, ok := v.(*trimeter.PanicError)
	if !ok || pe.Value != "inner" {
		t.Fatalf("panicked with %#v, want a *PanicError whose Value is the inner panic's", v)
	}
	if !strings.Contains(string(pe.Stack), "TestNestedPanicComesOutOnce.func1") {
		t.Errorf("stack does not show the inner fn:\n%s", pe.Stack)
	}
}

// A nil *PanicError is a panic like any other: it comes out of the call as
// a *PanicError whose Value is that nil pointer.
func TestNilPanicErrorInFnIsRaised(t *testing.T) {
	fn := func(ctx context.Context, v int) error {
		if v == 0 {
			panic((*trimeter.PanicError)(nil))
		}
		return nil
	}
	v := catch(func() { _ = trimeter.RunOnEach(context.Background(), newProbe(3).seq(), fn, trimeter.MaxAtOnce(2)) })
	pe, ok := v.(*trimeter.PanicError)
	if !ok || pe == nil || pe.Value != (*trimeter.PanicError)(nil) {
		t.Fatalf("recovered %#v, want a *PanicError carrying the nil one", v)
	}
}

// boomOnDone is a meter whose permits panic in Done.
type boomOnDone struct{}

type boomPermit struct{}

func (boomPermit) Done(throttle.Outcome) { panic("boom on Done") }

func (boomOnDone) Acquire(context.Context) (throttle.Permit, error) { return boomPermit{}, nil }

// A panic in a permit's Done while the permits of a task that a later
// meter refused are given back does not keep the others from going back.
func TestMeterPanicWhileGivingBackGivesBackTheRest(t *testing.T) {
	shared := throttle.NewConcurrency(5)
	rate := throttle.NewRate(1, 1) // input 0 takes the token: input 1 is refused
	fn := func(ctx context.Context, v int) error {
		if v == 0 {
			awaitCancel(t, ctx) // until input 1's give-back has panicked
		}
		return nil
	}
	r := catch(func() {
		_ = trimeter.RunOnEach(context.Background(), newProbe(2).seq(), fn, trimeter.MaxAtOnce(2),
			trimeter.WithMeter(boomOnDone{}), trimeter.WithMeter(shared), trimeter.WithMeter(rate))
	})
	checkPanicError(t, r, "boom on Done", "boomPermit")
	if s := shared.Stats(); s.InFlight != 0 {
		t.Errorf("the shared meter has %d permits in flight after the run, want 0", s.InFlight)
	}
}

// brokenTrier is a meter that answers at once, built with a bad value.
type brokenTrier struct{ brokenMeter }

func (m *brokenTrier) TryAcquire(context.Context) (throttle.Permit, time.Duration, error) {
	return nil, 0, m.err
}

// Of two meters built with bad values, the one given first is reported,
// whatever order the attempts ask them in.
func TestTheFirstBrokenMeterGivenIsReported(t *testing.T) {
	first := &brokenTrier{brokenMeter{err: errors.New("meter: the first bad value")}}
	err := trimeter.RunOnEach(context.Background(), newProbe(3).seq(), func(context.Context, int) error { return nil },
		trimeter.WithMeter(first), trimeter.WithMeter(throttle.NewRate(-1, 1)))
	if err == nil || !strings.Contains(err.Error(), "the first bad value") {
		t.Errorf("got %v, want the first meter's error", err)
	}
}

// An option given twice takes the last value: here two tasks can only end
// once both have started, which the last options allow and the first ones
// do not.
func TestAnOptionGivenTwiceTakesTheLastValue(t *testing.T) {
	cases := map[string][]trimeter.Option{
		"MaxAtOnce": {trimeter.MaxAtOnce(1), trimeter.MaxAtOnce(2)},
		"PerKey": {trimeter.PerKey(func(int) int { return 0 }, trimeter.MaxAtOnce(1)),
			trimeter.PerKey(func(v int) int { return v }, trimeter.MaxAtOnce(1))},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), patience) // a watchdog
			defer cancel()
			var started atomic.Int64
			bothStarted := make(chan struct{})
			fn := func(ctx context.Context, v int) error {
				if started.Add(1) == 2 {
					close(bothStarted)
				}
				select {
				case <-bothStarted:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if err := trimeter.RunOnEach(ctx, slices.Values([]int{1, 2}), fn, opts...); err != nil {
				t.Errorf("got %v, want both tasks at once", err)
			}
		})
	}
}

// oddFails is a meter whose every second Acquire fails: a shared store
// that is down now and then.
type oddFails struct{ n atomic.Int64 }

func (m *oddFails) Acquire(context.Context) (throttle.Permit, error) {
	if m.n.Add(1)%2 == 0 {
		return nil, errMeterDown
	}
	return nopPermit{}, nil
}

// Under KeepGoing, and in Outcomes, a meter's error is the failure of the
// input it was asked for, which does not run; the run goes on.
func TestMeterErrorUnderKeepGoingFailsOneInput(t *testing.T) {
	var ran atomic.Int64
	fn := func(context.Context, int) error { ran.Add(1); return nil }
	err := trimeter.RunOnEach(context.Background(), newProbe(6).seq(), fn,
		trimeter.MaxAtOnce(1), trimeter.WithMeter(&oddFails{}), trimeter.KeepGoing())
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("RunOnEach under KeepGoing = %v, want a joined error", err)
	}
	var ies []int
	for _, e := range joined.Unwrap() {
		var ie *trimeter.ItemError
		if !errors.As(e, &ie) || ie.Err != errMeterDown {
			t.Fatalf("RunOnEach under KeepGoing = %v, want the meter's errors as ItemErrors", err)
		}
		ies = append(ies, ie.Index)
	}
	if !slices.Equal(ies, []int{1, 3, 5}) || ran.Load() != 3 {
		t.Errorf("the meter failed inputs %v and fn ran %d times; want inputs [1 3 5] failed and 3 runs", ies, ran.Load())
	}

	var failed []int
	square := func(_ context.Context, v int) (int, error) { return v * v, nil }
	for in, out := range trimeter.Outcomes(context.Background(), newProbe(4).seq(), square,
		trimeter.MaxAtOnce(1), trimeter.WithMeter(&oddFails{})) {
		if _, err := out.Unwrap(); err != nil {
			if err != errMeterDown {
				t.Errorf("input %d: %v, want the meter's error", in.Index, err)
			}
			failed = append(failed, in.Index)
		}
	}
	if !slices.Equal(failed, []int{1, 3}) {
		t.Errorf("Outcomes: inputs %v failed, want [1 3]", failed)
	}
}

// admissions is a meter that counts the tasks admitted: a task has
// started once its permits are granted, before its worker hands the turn
// on to the next one, and perhaps well before it reaches fn on a loaded
// machine. A permit given back unused is not counted.
type admissions struct{ n atomic.Int64 }

func (a *admissions) Acquire(context.Context) (throttle.Permit, error) {
	a.n.Add(1)
	return a, nil
}

func (a *admissions) TryAcquire(ctx context.Context) (throttle.Permit, time.Duration, error) {
	p, err := a.Acquire(ctx)
	return p, 0, err
}

func (a *admissions) Done(o throttle.Outcome) {
	if o.Status == throttle.Unused {
		a.n.Add(-1)
	}
}

// pulledAhead ranges over AMap of an endless input under opts until 2,000
// results have come, and returns the most inputs that had been pulled and
// not started, seen each time the input was asked for its next value. A
// task counts as started once began counts it; with inFn, fn counts it.
func pulledAhead(t *testing.T, began *atomic.Int64, inFn bool, opts ...trimeter.Option) int64 {
	t.Helper()
	var most atomic.Int64
	in := func(yield func(int) bool) {
		for i := 0; ; i++ {
			most.Store(max(most.Load(), int64(i)-began.Load()))
			if !yield(i) {
				return
			}
		}
	}
	fn := func(_ context.Context, v int) (int, error) {
		if inFn {
			began.Add(1)
		}
		return v, nil
	}
	n := 0
	for _, err := range trimeter.AMap(context.Background(), in, fn, opts...) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 2000 {
			break
		}
	}
	return most.Load()
}

// The package doc, Scheduling: every input held has a slot; with MaxAtOnce
// alone, those pulled on free slots may wait in the feeder's queue, up to
// MaxAtOnce of them, before their calls begin; on the paths where workers
// take turns to start tasks at most one input is held beyond the tasks
// started. There a task has started once it was admitted (counted by
// admissions), as its worker may be descheduled before it reaches fn; on
// the others, fn counts the calls begun. (With no limit at all the feeder
// takes the run, and its queue's bound counts the inputs no worker has
// taken yet, which fn cannot see: see
// TestAnUnlimitedFeederWaitsWhileItsQueueIsFull.)
func TestInputsPulledAheadOfTheirCalls(t *testing.T) {
	keys := trimeter.PerKey(func(v int) int { return v % 3 }) // no key limit: none waits aside
	cases := []struct {
		name    string
		most    int64
		turns   bool // workers take turns: count admissions
		options []trimeter.Option
	}{
		{"MaxAtOnce(1)", 1, false, []trimeter.Option{trimeter.MaxAtOnce(1)}},
		{"MaxAtOnce(4)", 4, false, []trimeter.Option{trimeter.MaxAtOnce(4)}},
		{"MaxAtOnce(64)", 64, false, []trimeter.Option{trimeter.MaxAtOnce(64)}},
		{"MaxAtOnce(64) and a rate", 1, true, []trimeter.Option{trimeter.MaxAtOnce(64), trimeter.MaxPerSecond(1e9), trimeter.MaxBurst(1e6)}},
		{"MaxAtOnce(64) and PerKey", 1, true, []trimeter.Option{trimeter.MaxAtOnce(64), keys}},
		{"a meter and no limit", 1, true, nil}, // the meter is the admissions counter
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got int64
			if c.turns {
				a := &admissions{}
				got = pulledAhead(t, &a.n, false, append(slices.Clone(c.options), trimeter.WithMeter(a))...)
			} else {
				var began atomic.Int64
				got = pulledAhead(t, &began, true, c.options...)
			}
			if got > c.most {
				t.Errorf("%d inputs were pulled and not started, want at most %d", got, c.most)
			}
		})
	}
}

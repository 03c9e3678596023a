package trimeter_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/throttle"
)

// Under GODEBUG=panicnil=1, panic(nil) recovers as nil, as a Goexit does,
// but the recover stops it, so the code that recovered goes on. These
// tests turn the setting on for themselves (the runtime reads GODEBUG
// again when it changes) and check that a meter doing it is reported as
// a Goexit, and that no permit is given back twice on the way.

// withPanicNil turns GODEBUG=panicnil=1 on for the rest of t, and checks
// that the runtime took it.
func withPanicNil(t *testing.T) {
	t.Setenv("GODEBUG", "panicnil=1")
	if r := catch(func() { panic(nil) }); r != nil {
		t.Fatalf("with GODEBUG=panicnil=1, panic(nil) recovered as %T, want nil", r)
	}
}

// nilMeter counts its permits and panics with nil on chosen calls: the
// panicAt-th Acquire or TryAcquire, or the doneAt-th Done. As a Trier, it
// refuses its first TryAcquire when refuse is set, so that the call waits
// for it in Acquire.
type nilMeter struct {
	trier           bool
	refuse          bool
	panicAt, doneAt int64
	calls, dones    atomic.Int64
	live, doneTwice atomic.Int64
	refused         atomic.Bool
}

type nilPermit struct {
	m    *nilMeter
	done atomic.Bool
}

func (p *nilPermit) Done(throttle.Outcome) {
	if !p.done.CompareAndSwap(false, true) {
		p.m.doneTwice.Add(1)
		return
	}
	p.m.live.Add(-1)
	if p.m.dones.Add(1) == p.m.doneAt {
		panic(nil)
	}
}

func (m *nilMeter) Acquire(context.Context) (throttle.Permit, error) {
	if m.calls.Add(1) == m.panicAt {
		panic(nil)
	}
	m.live.Add(1)
	return &nilPermit{m: m}, nil
}

type nilTrier struct{ *nilMeter }

func (m nilTrier) TryAcquire(ctx context.Context) (throttle.Permit, time.Duration, error) {
	if m.refuse && m.refused.CompareAndSwap(false, true) {
		return nil, time.Millisecond, nil
	}
	p, err := m.Acquire(ctx)
	return p, 0, err
}

func (m *nilMeter) meter() throttle.Meter {
	if m.trier {
		return nilTrier{m}
	}
	return m
}

// check asserts that every permit m gave was done, and none twice.
func (m *nilMeter) check(t *testing.T, name string) {
	t.Helper()
	if n := m.doneTwice.Load(); n > 0 {
		t.Errorf("%s: %d permits done twice", name, n)
	}
	if n := m.live.Load(); n != 0 {
		t.Errorf("%s: %d permits never done", name, n)
	}
}

func TestPanicNilInAMeterCountsAsGoexit(t *testing.T) {
	withPanicNil(t)
	noop := func(context.Context, int) error { return nil }
	limits := []struct {
		name string
		opts []trimeter.Option
	}{
		{"MaxAtOnce(1)", []trimeter.Option{trimeter.MaxAtOnce(1)}},
		{"MaxAtOnce(3)", []trimeter.Option{trimeter.MaxAtOnce(3)}},
	}
	// The run's own rate, or a key's, hands out permits that it reuses
	// once done: one given back twice would be another start's. Its
	// bucket holds every start, so that the fake clock never has to move.
	rates := []struct {
		name string
		opts []trimeter.Option
	}{
		{"the run's rate", []trimeter.Option{trimeter.MaxPerSecond(1000), trimeter.MaxBurst(20)}},
		{"a key's rate", []trimeter.Option{trimeter.PerKey(func(v int) int { return v % 2 }, trimeter.MaxPerSecond(1000), trimeter.MaxBurst(20))}},
	}
	for _, lim := range limits {
		for _, rate := range rates {
			run := func(t *testing.T, meters ...*nilMeter) {
				t.Helper()
				opts := append([]trimeter.Option{trimeter.WithClock(newFakeClock())}, rate.opts...)
				opts = append(opts, lim.opts...)
				for _, m := range meters {
					opts = append(opts, trimeter.WithMeter(m.meter()))
				}
				p := newProbe(10)
				e := callAlone(func() { _ = trimeter.RunOnEach(context.Background(), p.seq(), noop, opts...) })
				if e.panic == nil {
					t.Fatalf("the call ended with %+v, want a PanicError carrying ErrGoexit", e)
				}
				checkGoexitEnding(t, e)
				checkCleanedUp(t, p)
			}
			name := lim.name + " and " + rate.name
			t.Run("in TryAcquire with "+name, func(t *testing.T) {
				m := &nilMeter{trier: true, panicAt: 2}
				run(t, m)
				m.check(t, "the meter")
			})
			t.Run("in Acquire after a refusal with "+name, func(t *testing.T) {
				// The blocking meter is asked first and its permit kept
				// while the call waits for the one that refused.
				kept := &nilMeter{}
				m := &nilMeter{trier: true, refuse: true, panicAt: 1}
				run(t, kept, m)
				kept.check(t, "the meter whose permit was kept")
				m.check(t, "the meter that panicked")
			})
			t.Run("in Done with "+name, func(t *testing.T) {
				m := &nilMeter{trier: true, doneAt: 1}
				run(t, m)
				m.check(t, "the meter")
			})
		}
	}
}

// panicNilForKey's ForKey panics with nil.
type panicNilForKey struct{}

func (panicNilForKey) ForKey(string) throttle.Meter { panic(nil) }

func (panicNilForKey) Acquire(context.Context) (throttle.Permit, error) {
	panic("a keyed meter is asked through ForKey only")
}

func TestPanicNilInAKeyCountsAsGoexit(t *testing.T) {
	withPanicNil(t)
	// With room for more than one call, each holds its key until the run
	// stops, so that the inputs after the first two wait aside and the
	// pull of the fifth is made with the turn lent (starter.go).
	hold := func(ctx context.Context, _ int) error {
		awaitCancel(t, ctx)
		return nil
	}
	noop := func(context.Context, int) error { return nil }
	keyOf := func(v int) int {
		if v == 4 {
			panic(nil)
		}
		return v % 2
	}
	cases := []struct {
		name string
		opts []trimeter.Option
	}{
		{"in the key function", []trimeter.Option{trimeter.PerKey(keyOf, trimeter.MaxAtOnce(1))}},
		{"in ForKey", []trimeter.Option{trimeter.PerKey(func(v int) int { return v % 2 }, trimeter.WithMeter(panicNilForKey{}))}},
	}
	for _, c := range cases {
		for _, atOnce := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s with MaxAtOnce(%d)", c.name, atOnce), func(t *testing.T) {
				p := newProbe(10)
				opts := append([]trimeter.Option{trimeter.MaxAtOnce(atOnce)}, c.opts...)
				fn := hold
				if atOnce == 1 {
					fn = noop
				}
				e := callAlone(func() { _ = trimeter.RunOnEach(context.Background(), p.seq(), fn, opts...) })
				if e.panic == nil {
					t.Fatalf("the call ended with %+v, want a PanicError carrying ErrGoexit", e)
				}
				checkGoexitEnding(t, e)
				checkCleanedUp(t, p)
			})
		}
	}
}

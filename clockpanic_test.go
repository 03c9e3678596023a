package trimeter_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/internal/testclock"
	"github.com/trimeter-go/trimeter/throttle"
)

// panickyClock is a fake clock whose Since panics once when armed: with
// value, or with nil (see panicnil_test.go). The run's own rate reads the
// clock given with WithClock, user code, as it takes each token.
type panickyClock struct {
	*testclock.Clock
	armed atomic.Bool
	value any
	inNow bool // Now panics when armed, rather than Since
}

func (c *panickyClock) Since(t time.Time) time.Duration {
	if !c.inNow && c.armed.Swap(false) {
		panic(c.value)
	}
	return c.Clock.Since(t)
}

func (c *panickyClock) Now() time.Time {
	if c.inNow && c.armed.Swap(false) {
		panic(c.value)
	}
	return c.Clock.Now()
}

// runOnPanickyClock runs four no-op tasks, one at a time, under the run's
// own rate on clock c, which panics as the second input's token is taken.
// The input sequence recovers what unwinds through it when recovers is
// set. It returns what RunOnEach panicked with, and whether the sequence
// was unwound (rather than told by yield to stop).
func runOnPanickyClock(c *panickyClock, recovers bool) (panicked any, unwound bool) {
	seq := func(yield func(int) bool) {
		returned := false
		defer func() {
			unwound = !returned
			if recovers {
				_ = recover()
			}
		}()
		for i := range 4 {
			if i == 1 {
				c.armed.Store(true)
			}
			if !yield(i) {
				break
			}
		}
		returned = true
	}
	fn := func(context.Context, int) error { return nil }
	panicked = catch(func() {
		_ = trimeter.RunOnEach(context.Background(), seq, fn, trimeter.WithClock(c),
			trimeter.MaxAtOnce(1), trimeter.MaxPerSecond(1000), trimeter.MaxBurst(100))
	})
	return panicked, unwound
}

// A panic in the clock, as the run's own rate reads it, is the run's
// panic, raised again with its value, even when the input sequence
// recovers what unwinds through it.
func TestAPanicInTheClockOfTheRunsOwnRate(t *testing.T) {
	c := &panickyClock{Clock: testclock.New(), value: "clock broke"}
	r, _ := runOnPanickyClock(c, true)
	if pe, ok := r.(*trimeter.PanicError); !ok || pe.Value != "clock broke" {
		t.Errorf("RunOnEach panicked with %T (%v), want a *trimeter.PanicError of the clock's value", r, r)
	}
}

// A panic(nil) under GODEBUG=panicnil=1 in that clock counts as a Goexit,
// as it does in a meter, and the run stops: the input sequence is told to
// stop by yield, not unwound.
func TestAPanicNilInTheClockOfTheRunsOwnRate(t *testing.T) {
	withPanicNil(t)
	c := &panickyClock{Clock: testclock.New()}
	r, unwound := runOnPanickyClock(c, false)
	if pe, ok := r.(*trimeter.PanicError); !ok || pe.Value != trimeter.ErrGoexit {
		t.Errorf("RunOnEach panicked with %T (%v), want a *trimeter.PanicError of ErrGoexit", r, r)
	}
	if unwound {
		t.Error("the input sequence was unwound; want yield to return false")
	}
}

// armingTrier is a shared meter that arms clock as it grants a permit:
// the next reading of the clock, the attempt's start, panics.
type armingTrier struct {
	*throttle.Concurrency
	clock *panickyClock
}

func (a armingTrier) TryAcquire(ctx context.Context) (throttle.Permit, time.Duration, error) {
	p, wait, err := a.Concurrency.TryAcquire(ctx)
	if p != nil {
		a.clock.armed.Store(true)
	}
	return p, wait, err
}

// When the clock panics during an attempt (as the attempt starts, as the
// monitor counts its start, as a push-back's pause begins, or as the
// attempt's latency is read), the panic is the run's, and the permits the
// attempt held go back: a meter shared with other calls does not lose a
// slot for good, and the monitor counts no attempt still in flight.
func TestAPanicInTheClockDuringAnAttemptGivesItsPermitsBack(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		// run runs one task on clock c with the meter sem and the monitor
		// mon, arming the clock at the moment the case is about.
		run func(c *panickyClock, sem *throttle.Concurrency, mon *throttle.Monitor)
	}{
		{"as the attempt starts", func(c *panickyClock, sem *throttle.Concurrency, mon *throttle.Monitor) {
			c.inNow = true
			fn := func(context.Context, int) error { return nil }
			_ = trimeter.RunOnEach(ctx, slices.Values([]int{0}), fn, trimeter.WithMeter(armingTrier{sem, c}),
				trimeter.WithClock(c), trimeter.Watch(mon))
		}},
		{"as the monitor counts its start", func(c *panickyClock, sem *throttle.Concurrency, mon *throttle.Monitor) {
			c.inNow = true
			c.armed.Store(true) // the monitor's first start reads its clock; the run reads the real one
			fn := func(context.Context, int) error { return nil }
			_ = trimeter.RunOnEach(ctx, slices.Values([]int{0}), fn, trimeter.WithMeter(sem), trimeter.Watch(mon))
		}},
		{"as a push-back's pause begins", func(c *panickyClock, sem *throttle.Concurrency, mon *throttle.Monitor) {
			c.inNow = true
			fn := func(context.Context, int) error {
				c.armed.Store(true)
				return trimeter.Pushback(time.Second, errBusy)
			}
			_ = trimeter.RunOnEach(ctx, slices.Values([]int{0}), fn, trimeter.WithMeter(sem),
				trimeter.WithClock(c), trimeter.Watch(mon))
		}},
		{"as its latency is read", func(c *panickyClock, sem *throttle.Concurrency, mon *throttle.Monitor) {
			fn := func(context.Context, int) error {
				c.armed.Store(true)
				return nil
			}
			_ = trimeter.RunOnEach(ctx, slices.Values([]int{0}), fn, trimeter.WithMeter(sem),
				trimeter.WithClock(c), trimeter.Watch(mon))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := &panickyClock{Clock: testclock.New(), value: "clock broke"}
			sem := throttle.NewConcurrency(1, throttle.WithClock(clock.Clock))
			mon := throttle.NewMonitor(clock)
			r := catch(func() { c.run(clock, sem, mon) })
			clock.Advance(time.Minute) // past the pause a push-back gives the shared meter
			if pe, ok := r.(*trimeter.PanicError); !ok || pe.Value != "clock broke" {
				t.Fatalf("RunOnEach panicked with %T (%v), want a *trimeter.PanicError of the clock's value", r, r)
			}
			if clock.armed.Load() {
				t.Fatal("the clock was not read where the case arms it")
			}
			if s := sem.Stats(); s.InFlight != 0 {
				t.Errorf("the shared meter has %d permits in flight after the run, want none", s.InFlight)
			}
			if p, _, _ := sem.TryAcquire(ctx); p == nil {
				t.Error("the shared meter's one slot is still taken after the run")
			} else {
				p.Done(throttle.Outcome{Status: throttle.Succeeded})
			}
			if s := mon.Stats(); s.InFlight != 0 {
				t.Errorf("the monitor counts %d attempts in flight after the run, want none", s.InFlight)
			}
		})
	}
}

// outcomeMeter is a meter that keeps the outcome its one permit was told.
type outcomeMeter struct {
	mu   sync.Mutex
	told []throttle.Outcome
}

func (m *outcomeMeter) Acquire(context.Context) (throttle.Permit, error) { return m, nil }

func (m *outcomeMeter) Done(o throttle.Outcome) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.told = append(m.told, o)
}

// An attempt's latency is read on any clock, one that stands at the zero
// instant too.
func TestAttemptLatencyOnAClockAtTheZeroInstant(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Time{})
	m := &outcomeMeter{}
	fn := func(context.Context, int) error {
		clock.Advance(10 * time.Millisecond)
		return nil
	}
	if err := trimeter.RunOnEach(context.Background(), slices.Values([]int{0}), fn, trimeter.WithMeter(m), trimeter.WithClock(clock)); err != nil {
		t.Fatal(err)
	}
	if len(m.told) != 1 || m.told[0].Latency != 10*time.Millisecond {
		t.Errorf("the meter was told %+v, want one outcome with a latency of 10ms", m.told)
	}
}

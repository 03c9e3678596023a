package throttle_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/internal/testclock"
	"github.com/trimeter-go/trimeter/throttle"
)

// panickyClock is a fake clock whose Since panics once when armed: a
// WithClock clock of the user's that fails.
type panickyClock struct {
	*testclock.Clock
	armed atomic.Bool
}

func (c *panickyClock) Since(t time.Time) time.Duration {
	if c.armed.Swap(false) {
		panic("the clock broke")
	}
	return c.Clock.Since(t)
}

// panics says whether f panicked.
func panics(f func()) (panicked bool) {
	defer func() { panicked = recover() != nil }()
	f()
	return false
}

// A meter whose clock panics while it is read passes the panic to the
// caller, and stays usable: it is not left locked, and no caller is left
// in its line, for every method that reads the clock.
func TestMeterStaysUsableAfterItsClockPanicked(t *testing.T) {
	ctx := context.Background()
	done := throttle.Outcome{Status: throttle.Succeeded}
	paused := throttle.Outcome{Status: throttle.PushedBack, Pause: time.Second}
	for _, tc := range []struct {
		name string
		// prepare builds the meter on c and returns it with the call whose
		// clock reading panics.
		prepare func(c throttle.Option) (throttle.Meter, func())
	}{
		{"Rate.Acquire", func(c throttle.Option) (throttle.Meter, func()) {
			r := throttle.NewRate(1, 1, c)
			return r, func() { _, _ = r.Acquire(ctx) }
		}},
		{"Rate.SetRate", func(c throttle.Option) (throttle.Meter, func()) {
			r := throttle.NewRate(1, 1, c)
			return r, func() { _ = r.SetRate(2) }
		}},
		{"Rate.SetBurst", func(c throttle.Option) (throttle.Meter, func()) {
			r := throttle.NewRate(1, 1, c)
			return r, func() { _ = r.SetBurst(2) }
		}},
		{"Rate permit Done", func(c throttle.Option) (throttle.Meter, func()) {
			r := throttle.NewRate(1, 2, c)
			p, _ := r.Acquire(ctx)
			return r, func() { p.Done(throttle.Outcome{Status: throttle.Unused}) }
		}},
		{"Rate permit Done with a pause", func(c throttle.Option) (throttle.Meter, func()) {
			r := throttle.NewRate(1, 2, c)
			p, _ := r.Acquire(ctx)
			return r, func() { p.Done(paused) }
		}},
		{"Concurrency permit Done", func(c throttle.Option) (throttle.Meter, func()) {
			m := throttle.NewConcurrency(1, c)
			p, _ := m.Acquire(ctx)
			return m, func() { p.Done(paused) }
		}},
		{"Adaptive.Acquire", func(c throttle.Option) (throttle.Meter, func()) {
			m := throttle.NewAdaptive(1, 4, c)
			return m, func() { _, _ = m.Acquire(ctx) }
		}},
		{"Adaptive permit Done", func(c throttle.Option) (throttle.Meter, func()) {
			m := throttle.NewAdaptive(1, 4, c)
			p, _ := m.Acquire(ctx)
			return m, func() { p.Done(paused) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &panickyClock{Clock: testclock.New()}
			m, call := tc.prepare(throttle.WithClock(clock))
			clock.armed.Store(true)
			if !panics(call) {
				t.Fatal("the call did not pass the clock's panic on")
			}
			if clock.armed.Load() {
				t.Fatal("the call did not read the clock")
			}
			clock.Advance(time.Hour) // past any pause or token
			answered := make(chan throttle.Permit, 1)
			go func() {
				p, _ := m.Acquire(ctx)
				answered <- p
			}()
			select {
			case p := <-answered:
				if p == nil {
					t.Fatal("Acquire gave no permit after the clock's panic")
				}
				p.Done(done)
				if s := m.(interface{ Stats() throttle.Stats }).Stats(); s.InFlight != 0 || s.Waiting != 0 {
					t.Errorf("Stats = %+v once every permit is done, want none in flight or waiting", s)
				}
			case <-time.After(patience):
				t.Fatalf("Acquire still blocked %v after the clock's panic: the meter was left locked", patience)
			}
		})
	}
}

// A waiter whose clock panics as it looks again leaves the line: the
// caller behind it is served.
func TestWaiterWhoseClockPanickedLeavesTheLine(t *testing.T) {
	ctx := context.Background()
	clock := &panickyClock{Clock: testclock.New()}
	r := throttle.NewRate(1, 1, throttle.WithClock(clock))
	p, err := r.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Done(throttle.Outcome{Status: throttle.Succeeded}) // the bucket is empty now
	first := make(chan bool, 1)
	go func() { first <- panics(func() { _, _ = r.Acquire(ctx) }) }()
	clock.WaitFor(t, 1) // the first waiter's timer is set
	second := make(chan throttle.Permit, 1)
	go func() {
		p, _ := r.Acquire(ctx)
		second <- p
	}()
	settle(t, "the second caller waits behind the first", func() bool { return r.Stats().Waiting == 2 })
	clock.armed.Store(true)
	clock.Advance(time.Second) // the first waiter wakes, and its reading panics
	if !<-first {
		t.Fatal("the first waiter did not pass the clock's panic on")
	}
	select {
	case p := <-second:
		if p == nil {
			t.Fatal("the second caller got no permit")
		}
		p.Done(throttle.Outcome{Status: throttle.Succeeded})
	case <-time.After(patience):
		t.Fatalf("the second caller still waits %v after the first left with a panic (Stats %+v)", patience, r.Stats())
	}
	if s := r.Stats(); s.Waiting != 0 || s.InFlight != 0 {
		t.Errorf("Stats = %+v, want no one waiting or in flight", s)
	}
}

package throttle_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/trimeter-go/trimeter/internal/testclock"
	"github.com/trimeter-go/trimeter/throttle"
)

// A pause for good holds when the clock is then set back before the
// meter was made: what is left of it is too long for an int64, not less
// than nothing.
func TestPauseForGoodHoldsWhenTheClockIsSetBack(t *testing.T) {
	for name, m := range map[string]func(*testclock.Clock) slotMeter{
		"Concurrency": func(c *testclock.Clock) slotMeter { return throttle.NewConcurrency(1, throttle.WithClock(c)) },
		"Adaptive":    func(c *testclock.Clock) slotMeter { return throttle.NewAdaptive(1, 4, throttle.WithClock(c)) },
		"Rate":        func(c *testclock.Clock) slotMeter { return throttle.NewRate(1, 1, throttle.WithClock(c)) },
	} {
		clock := testclock.New()
		meter := m(clock)
		p, _, err := meter.TryAcquire(context.Background())
		if err != nil || p == nil {
			t.Fatalf("%s: first TryAcquire: %v, %v", name, p, err)
		}
		p.Done(throttle.Outcome{Status: throttle.PushedBack, Pause: math.MaxInt64})
		clock.Advance(-time.Nanosecond)
		if p, wait, err := meter.TryAcquire(context.Background()); p != nil || err != nil {
			t.Errorf("%s: granted (error %v) during a pause for good, after the clock went back 1 ns", name, err)
			if p != nil {
				p.Done(throttle.Outcome{Status: throttle.Unused})
			}
		} else if wait < 292*365*24*time.Hour {
			t.Errorf("%s: asked to wait %v during a pause for good", name, wait)
		}
		if got := meter.Stats().PausedUntil; got.Before(clock.Now().Add(292 * 365 * 24 * time.Hour)) {
			t.Errorf("%s: PausedUntil = %v", name, got)
		}
	}
}

// A nil context is a bad value, not a nil dereference.
func TestNilContextIsABadValue(t *testing.T) {
	for name, m := range map[string]slotMeter{
		"Concurrency": throttle.NewConcurrency(1),
		"Adaptive":    throttle.NewAdaptive(1, 4),
		"Rate":        throttle.NewRate(1, 1),
	} {
		if p, err := m.Acquire(nil); p != nil || !errors.Is(err, throttle.ErrBadValue) {
			t.Errorf("%s: Acquire(nil) = %v, %v; want an error wrapping ErrBadValue", name, p, err)
		}
		if p, _, err := m.TryAcquire(nil); p != nil || !errors.Is(err, throttle.ErrBadValue) {
			t.Errorf("%s: TryAcquire(nil) = %v, %v; want an error wrapping ErrBadValue", name, p, err)
		}
		if s := m.Stats(); s.InFlight != 0 || s.Started != 0 {
			t.Errorf("%s: Stats after refusals: %+v", name, s)
		}
	}
}

// NewMonitor given a nil clock, or a nil pointer to one, reads the real
// clock, as the zero Monitor does.
func TestNewMonitorWithANilClock(t *testing.T) {
	for name, clock := range map[string]clockwork.Clock{
		"nil":         nil,
		"nil pointer": (*clockwork.FakeClock)(nil),
	} {
		m := throttle.NewMonitor(clock)
		m.Start(false)
		m.Finish(false)
		if s := m.Stats(); s.Started != 1 || s.Finished != 1 {
			t.Errorf("%s: Stats = %+v, want one start and one finish", name, s)
		}
	}
}

// A meter built with a bad value reports zero Stats, and a Rate's Burst
// the burst asked for, or 1 for one below 1, as NewRate says.
func TestUnusableMetersReportNothing(t *testing.T) {
	for _, c := range []struct {
		r     *throttle.Rate
		burst int
	}{
		{throttle.NewRate(math.NaN(), 5), 5},
		{throttle.NewRate(1, -3), 1},
		{throttle.NewRate(1, math.MaxInt), math.MaxInt},
	} {
		if c.r.Err() == nil {
			t.Fatalf("a bad Rate (burst %d) reports no error", c.burst)
		}
		if got := c.r.Burst(); got != c.burst {
			t.Errorf("%v: Burst() = %d, want %d", c.r.Err(), got, c.burst)
		}
		if s := c.r.Stats(); s != (throttle.Stats{}) {
			t.Errorf("%v: Stats() = %+v, want zero", c.r.Err(), s)
		}
	}
	for _, w := range []throttle.Watcher{throttle.NewConcurrency(0), throttle.NewAdaptive(0, 1)} {
		if s := w.Stats(); s != (throttle.Stats{}) {
			t.Errorf("%T built with a bad value: Stats() = %+v, want zero", w, s)
		}
	}
}

// A meter that no New function made (its zero value) has no limit to
// enforce: it is a bad value, reported by Err and by every method that
// reports one, and no method panics.
func TestZeroValueMetersAreBadValues(t *testing.T) {
	ctx := context.Background()
	for _, m := range []interface {
		throttle.Meter
		throttle.Trier
		throttle.Checker
		throttle.Watcher
	}{&throttle.Rate{}, &throttle.Concurrency{}, &throttle.Adaptive{}} {
		if err := m.Err(); !errors.Is(err, throttle.ErrBadValue) || !strings.Contains(err.Error(), "zero value") {
			t.Errorf("%T{}.Err() = %v, want a bad value that says it is a zero value", m, err)
		}
		if _, err := m.Acquire(ctx); !errors.Is(err, throttle.ErrBadValue) {
			t.Errorf("%T{}.Acquire: %v, want a bad value", m, err)
		}
		if _, _, err := m.TryAcquire(ctx); !errors.Is(err, throttle.ErrBadValue) {
			t.Errorf("%T{}.TryAcquire: %v, want a bad value", m, err)
		}
		if s := m.Stats(); s != (throttle.Stats{}) {
			t.Errorf("%T{}.Stats() = %+v, want zero", m, s)
		}
	}
	r := &throttle.Rate{}
	if err := r.SetRate(5); !errors.Is(err, throttle.ErrBadValue) {
		t.Errorf("Rate{}.SetRate: %v, want a bad value", err)
	}
	if err := r.SetBurst(5); !errors.Is(err, throttle.ErrBadValue) {
		t.Errorf("Rate{}.SetBurst: %v, want a bad value", err)
	}
	if d := r.Delay(1); d != 0 {
		t.Errorf("Rate{}.Delay(1) = %v, want 0, as for a bad value", d)
	}
	if err := (&throttle.Concurrency{}).SetLimit(5); !errors.Is(err, throttle.ErrBadValue) {
		t.Errorf("Concurrency{}.SetLimit: %v, want a bad value", err)
	}
}

package throttle_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/trimeter-go/trimeter/internal/testclock"
	"github.com/trimeter-go/trimeter/throttle"
)

// mustTry takes a permit that must be there at once and uses it.
func mustTry(t *testing.T, m throttle.Trier) {
	t.Helper()
	p, wait, err := m.TryAcquire(context.Background())
	if err != nil || p == nil {
		t.Fatalf("TryAcquire: no permit (wait %v, err %v)", wait, err)
	}
	p.Done(throttle.Outcome{Status: throttle.Succeeded})
}

// mustRefuse checks that no permit is there, and that the wait is want.
func mustRefuse(t *testing.T, m throttle.Trier, want time.Duration) {
	t.Helper()
	p, wait, err := m.TryAcquire(context.Background())
	if err != nil || p != nil || wait != want {
		t.Fatalf("TryAcquire: permit %v, wait %v, err %v; want none, wait %v", p != nil, wait, err, want)
	}
}

func TestRateUnusedGivesTheTokenBack(t *testing.T) {
	ctx := context.Background()
	unused := throttle.Outcome{Status: throttle.Unused}

	t.Run("when nothing was granted since", func(t *testing.T) {
		clock := testclock.New()
		r := throttle.NewRate(1, 1, throttle.WithClock(clock))
		p, _ := r.Acquire(ctx)
		clock.Advance(300 * time.Millisecond)
		p.Done(unused)
		mustTry(t, r)
		mustRefuse(t, r, time.Second)
		if s := r.Stats(); s.Started != 1 || s.InFlight != 0 {
			t.Fatalf("Stats: Started %d InFlight %d; want 1 and 0", s.Started, s.InFlight)
		}
	})
	t.Run("not when the bucket was full at a later grant", func(t *testing.T) {
		clock := testclock.New()
		r := throttle.NewRate(1, 1, throttle.WithClock(clock))
		a, _ := r.Acquire(ctx)
		clock.Advance(5 * time.Second)
		mustTry(t, r) // granted with a full bucket: a's token did not hold it up
		a.Done(unused)
		mustRefuse(t, r, time.Second)
	})
	t.Run("as far as later grants were held up", func(t *testing.T) {
		clock := testclock.New()
		r := throttle.NewRate(1, 3, throttle.WithClock(clock))
		a, _ := r.Acquire(ctx)
		mustTry(t, r)
		mustTry(t, r)
		a.Done(unused)
		mustTry(t, r)
		mustRefuse(t, r, time.Second)
	})
	t.Run("every token of a burst, in any order", func(t *testing.T) {
		for name, order := range map[string]func(i, n int) int{
			"in order":    func(i, _ int) int { return i },
			"reversed":    func(i, n int) int { return n - 1 - i },
			"interleaved": func(i, n int) int { return (i*3 + 1) % n },
		} {
			clock := testclock.New()
			// 32: the largest burst the doc promises back whole.
			r := throttle.NewRate(1, 32, throttle.WithClock(clock))
			ps := make([]throttle.Permit, 32)
			for i := range ps {
				ps[i], _ = r.Acquire(ctx)
			}
			clock.Advance(300 * time.Millisecond)
			for i := range ps {
				ps[order(i, len(ps))].Done(unused)
			}
			// None was used: the bound counts none of them, and the
			// bucket holds all 32 again.
			if d := r.Delay(32); d != 0 {
				t.Errorf("%s: Delay(32) = %v after all 32 came back unused, want 0", name, d)
			}
		}
	})
	t.Run("every token of a burst that follows another grant", func(t *testing.T) {
		clock := testclock.New()
		r := throttle.NewRate(1, 33, throttle.WithClock(clock))
		// A grant that finds the bucket full, and then a burst that finds
		// it ever emptier: the meter's record of grants holds the one
		// before the burst as well as the burst's own 32.
		mustTry(t, r)
		ps := make([]throttle.Permit, 32)
		for i := range ps {
			var wait time.Duration
			if ps[i], wait, _ = r.TryAcquire(ctx); ps[i] == nil {
				t.Fatalf("token %d of the burst not there (wait %v)", i, wait)
			}
		}
		for _, p := range ps {
			p.Done(unused)
		}
		if d := r.Delay(32); d != 0 {
			t.Errorf("Delay(32) = %v once the burst of 32 came back unused, want 0", d)
		}
	})
	t.Run("never above the burst", func(t *testing.T) {
		clock := testclock.New()
		r := throttle.NewRate(1, 2, throttle.WithClock(clock))
		a, _ := r.Acquire(ctx)
		clock.Advance(time.Minute)
		a.Done(unused)
		mustTry(t, r)
		mustTry(t, r)
		mustRefuse(t, r, time.Second)
	})
	t.Run("after a SetRate or SetBurst that changed nothing", func(t *testing.T) {
		for name, set := range map[string]func(*throttle.Rate) error{
			"SetRate":  func(r *throttle.Rate) error { return r.SetRate(1) },
			"SetBurst": func(r *throttle.Rate) error { return r.SetBurst(1) },
		} {
			clock := testclock.New()
			r := throttle.NewRate(1, 1, throttle.WithClock(clock))
			p, _ := r.Acquire(ctx)
			if err := set(r); err != nil {
				t.Fatal(err)
			}
			p.Done(unused)
			if q, wait, _ := r.TryAcquire(ctx); q == nil {
				t.Errorf("%s to the same value: the token did not come back (wait %v)", name, wait)
			}
		}
	})
	t.Run("not after a SetRate that changed the rate", func(t *testing.T) {
		clock := testclock.New()
		r := throttle.NewRate(1, 1, throttle.WithClock(clock))
		p, _ := r.Acquire(ctx)
		if err := r.SetRate(2); err != nil {
			t.Fatal(err)
		}
		p.Done(unused)
		mustRefuse(t, r, 500*time.Millisecond)
	})
	t.Run("to a waiter", func(t *testing.T) {
		clock := testclock.New()
		r := throttle.NewRate(1, 1, throttle.WithClock(clock))
		a, _ := r.Acquire(ctx)
		got := acquireAsync(ctx, r)
		clock.WaitFor(t, 1)
		a.Done(unused)
		if res := <-got; res.err != nil {
			t.Fatal(res.err)
		}
	})
}

type acquired struct {
	p   throttle.Permit
	err error
}

func acquireAsync(ctx context.Context, m throttle.Meter) <-chan acquired {
	c := make(chan acquired, 1)
	go func() {
		p, err := m.Acquire(ctx)
		c <- acquired{p, err}
	}()
	return c
}

// On a clock set back after a grant, the bucket lacks more than a burst;
// slowing the rate then scales that lack up past what an int64 holds, and
// the bucket stays empty rather than wrapping round to full.
func TestRateSetRateOnAClockSetBackKeepsTheBucketEmpty(t *testing.T) {
	clock := testclock.New()
	r := throttle.NewRate(1000, 1, throttle.WithClock(clock))
	clock.Advance(time.Hour)
	mustTry(t, r)
	clock.Advance(-time.Minute)
	if p, _, _ := r.TryAcquire(context.Background()); p != nil {
		t.Fatal("granted on the clock set back, before SetRate")
	}
	if err := r.SetRate(1e-6); err != nil { // a token in about 11.6 days
		t.Fatal(err)
	}
	if p, wait, _ := r.TryAcquire(context.Background()); p != nil || wait < 24*time.Hour {
		t.Fatalf("TryAcquire after SetRate(1e-6): permit %v, wait %v; want none, and a wait of days at least", p != nil, wait)
	}
}

func TestRateSetRateMidRun(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New()
	r := throttle.NewRate(1, 1, throttle.WithClock(clock))
	mustTry(t, r)
	got := acquireAsync(ctx, r)
	clock.WaitFor(t, 1)
	if err := r.SetRate(10); err != nil {
		t.Fatal(err)
	}
	// The waiter's token is now due 100ms after the first grant.
	clock.AdvanceWhen(t, 1, 99*time.Millisecond)
	select {
	case <-got:
		t.Fatal("granted before the new rate's interval")
	default:
	}
	clock.AdvanceWhen(t, 1, time.Millisecond)
	res := <-got
	if res.err != nil {
		t.Fatal(res.err)
	}
	res.p.Done(throttle.Outcome{Status: throttle.Succeeded})
	mustRefuse(t, r, 100*time.Millisecond)

	err := r.SetRate(-3)
	if !errors.Is(err, throttle.ErrBadValue) || !strings.Contains(err.Error(), "SetRate(-3)") {
		t.Fatalf("SetRate(-3) = %v; want ErrBadValue naming -3", err)
	}
	mustRefuse(t, r, 100*time.Millisecond)
}

func TestRateSetBurstMidRun(t *testing.T) {
	clock := testclock.New()
	r := throttle.NewRate(10, 1, throttle.WithClock(clock))
	if err := r.SetBurst(3); err != nil {
		t.Fatal(err)
	}
	if r.Burst() != 3 {
		t.Fatalf("Burst() = %d after SetBurst(3)", r.Burst())
	}
	mustTry(t, r) // the token that was there; raising adds none
	mustRefuse(t, r, 100*time.Millisecond)
	clock.Advance(time.Second)
	for range 3 {
		mustTry(t, r)
	}
	mustRefuse(t, r, 100*time.Millisecond)

	clock.Advance(time.Second)
	if err := r.SetBurst(2); err != nil {
		t.Fatal(err)
	}
	mustTry(t, r)
	mustTry(t, r)
	mustRefuse(t, r, 100*time.Millisecond)

	err := r.SetBurst(0)
	if !errors.Is(err, throttle.ErrBadValue) || !strings.Contains(err.Error(), "SetBurst(0)") {
		t.Fatalf("SetBurst(0) = %v; want ErrBadValue naming 0", err)
	}
	if r.Burst() != 2 {
		t.Fatalf("Burst() = %d after a bad SetBurst; want 2", r.Burst())
	}
}

func TestRatePause(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New()
	r := throttle.NewRate(100, 5, throttle.WithClock(clock))
	p1, _ := r.Acquire(ctx)
	p2, _ := r.Acquire(ctx)
	p1.Done(throttle.Outcome{Status: throttle.PushedBack, Pause: 2 * time.Second})
	if got, want := r.Stats().PausedUntil, testclock.Start.Add(2*time.Second); !got.Equal(want) {
		t.Fatalf("PausedUntil = %v, want %v", got, want)
	}
	mustRefuse(t, r, 2*time.Second)
	if d := r.Delay(1); d != 2*time.Second {
		t.Fatalf("Delay(1) = %v during a 2s pause", d)
	}
	p2.Done(throttle.Outcome{Status: throttle.PushedBack, Pause: time.Second})
	if got, want := r.Stats().PausedUntil, testclock.Start.Add(2*time.Second); !got.Equal(want) {
		t.Fatalf("a shorter pause moved PausedUntil to %v; want %v", got, want)
	}

	got := acquireAsync(ctx, r)
	clock.AdvanceWhen(t, 1, 2*time.Second-1)
	clock.WaitFor(t, 1)
	select {
	case <-got:
		t.Fatal("granted during the pause")
	default:
	}
	clock.Advance(1)
	res := <-got
	if res.err != nil {
		t.Fatal(res.err)
	}
	p3, _ := r.Acquire(ctx)
	res.p.Done(throttle.Outcome{Status: throttle.PushedBack, Pause: time.Second})
	p3.Done(throttle.Outcome{Status: throttle.PushedBack, Pause: 3 * time.Second})
	mustRefuse(t, r, 3*time.Second)
	clock.Advance(3 * time.Second)
	mustTry(t, r)
	if !r.Stats().PausedUntil.IsZero() {
		t.Fatal("PausedUntil set after the pause ended")
	}
}

func TestRateCancelWhileWaiting(t *testing.T) {
	clock := testclock.New()
	r := throttle.NewRate(1, 1, throttle.WithClock(clock))
	mustTry(t, r)

	ctx1, cancel1 := context.WithCancel(context.Background())
	first := acquireAsync(ctx1, r)
	settle(t, "one waiter", func() bool { return r.Stats().Waiting == 1 })
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	second := acquireAsync(ctx2, r)
	settle(t, "two waiters", func() bool { return r.Stats().Waiting == 2 })

	cancel1() // the head leaves; the second waiter takes its place
	if res := <-first; !errors.Is(res.err, context.Canceled) || res.p != nil {
		t.Fatalf("Acquire after cancel: permit %v, err %v", res.p != nil, res.err)
	}
	clock.AdvanceWhen(t, 1, time.Second)
	res := <-second
	if res.err != nil {
		t.Fatal(res.err)
	}
	if s := r.Stats(); s.Waiting != 0 || s.Started != 2 {
		t.Fatalf("Stats: Waiting %d Started %d; want 0 and 2", s.Waiting, s.Started)
	}
}

func TestRateCancelledContextTakesNothing(t *testing.T) {
	clock := testclock.New()
	r := throttle.NewRate(1, 1, throttle.WithClock(clock))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if p, err := r.Acquire(ctx); p != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire: permit %v, err %v", p != nil, err)
	}
	if p, _, err := r.TryAcquire(ctx); p != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("TryAcquire: permit %v, err %v", p != nil, err)
	}
	mustTry(t, r) // the token is still there
}

func TestRateServesWaitersInOrder(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New()
	r := throttle.NewRate(10, 1, throttle.WithClock(clock))
	mustTry(t, r)
	var waiters []<-chan acquired
	for i := range 5 {
		waiters = append(waiters, acquireAsync(ctx, r))
		settle(t, "the waiter is in line", func() bool { return r.Stats().Waiting == int64(i+1) })
	}
	mustRefuse(t, r, 600*time.Millisecond) // a newcomer comes after the five
	for i, w := range waiters {
		clock.AdvanceWhen(t, 1, 100*time.Millisecond)
		res := <-w
		if res.err != nil {
			t.Fatalf("waiter %d: %v", i, res.err)
		}
		for _, later := range waiters[i+1:] {
			select {
			case <-later:
				t.Fatalf("a later waiter was served with waiter %d", i)
			default:
			}
		}
	}
}

func TestRateDelay(t *testing.T) {
	clock := testclock.New()
	r := throttle.NewRate(10, 3, throttle.WithClock(clock))
	check := func(n int, want time.Duration) {
		t.Helper()
		if got := r.Delay(n); got != want {
			t.Fatalf("Delay(%d) = %v, want %v", n, got, want)
		}
	}
	check(3, 0)
	check(4, math.MaxInt64)
	mustTry(t, r)
	mustTry(t, r)
	check(1, 0)
	check(2, 100*time.Millisecond)
	check(3, 200*time.Millisecond)
	clock.Advance(50 * time.Millisecond)
	check(3, 150*time.Millisecond)
	if s := r.Stats(); s.Started != 2 {
		t.Fatalf("Delay took tokens: Started %d", s.Started)
	}
}

func TestRateBadValues(t *testing.T) {
	cases := []struct {
		name string
		r    *throttle.Rate
		want string
	}{
		{"zero rate", throttle.NewRate(0, 1), "NewRate(0, 1)"},
		{"negative rate", throttle.NewRate(-2, 1), "NewRate(-2, 1)"},
		{"NaN rate", throttle.NewRate(math.NaN(), 1), "NewRate(NaN, 1)"},
		{"infinite rate", throttle.NewRate(math.Inf(1), 1), "NewRate(+Inf, 1)"},
		{"rate too slow", throttle.NewRate(1e-12, 1), "NewRate(1e-12, 1)"},
		{"zero burst", throttle.NewRate(1, 0), "NewRate(1, 0)"},
		{"burst too large", throttle.NewRate(1, math.MaxInt), "too large"},
		{"nil option", throttle.NewRate(1, 1, nil), "option 0 is nil"},
		{"nil clock", throttle.NewRate(1, 1, throttle.WithClock(nil)), "WithClock(nil)"},
		{"nil fake clock", throttle.NewRate(1, 1, throttle.WithClock((*clockwork.FakeClock)(nil))), "WithClock(nil)"},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkBad(t, tc.r.Err(), tc.want)
			p, err := tc.r.Acquire(ctx)
			checkBad(t, err, tc.want)
			if p != nil {
				t.Fatal("Acquire gave a permit")
			}
			p, _, err = tc.r.TryAcquire(ctx)
			checkBad(t, err, tc.want)
			if p != nil {
				t.Fatal("TryAcquire gave a permit")
			}
			checkBad(t, tc.r.SetRate(1), tc.want)
			checkBad(t, tc.r.SetBurst(1), tc.want)
		})
	}
	r := throttle.NewRate(1, 1)
	for _, v := range []float64{0, -1, math.NaN(), math.Inf(-1), 1e-300} {
		checkBad(t, r.SetRate(v), fmt.Sprintf("SetRate(%v)", v))
	}
	checkBad(t, r.SetBurst(-1), "SetBurst(-1)")
	if r.Err() != nil {
		t.Fatalf("bad setter values broke the meter: %v", r.Err())
	}
}

func checkBad(t *testing.T, err error, want string) {
	t.Helper()
	if !errors.Is(err, throttle.ErrBadValue) || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v; want ErrBadValue naming %q", err, want)
	}
}

func TestRateStats(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New()
	r := throttle.NewRate(1, 2, throttle.WithClock(clock))
	a, _ := r.Acquire(ctx)
	b, _ := r.Acquire(ctx)
	got := acquireAsync(ctx, r)
	settle(t, "a waiter", func() bool { return r.Stats().Waiting == 1 })
	s := r.Stats()
	if s.Started != 2 || s.InFlight != 2 || s.Waiting != 1 || s.Limit != 0 {
		t.Fatalf("Stats = %+v; want Started 2 InFlight 2 Waiting 1", s)
	}
	a.Done(throttle.Outcome{Status: throttle.Failed})
	b.Done(throttle.Outcome{Status: throttle.Succeeded})
	clock.AdvanceWhen(t, 1, time.Second)
	res := <-got
	res.p.Done(throttle.Outcome{Status: throttle.Canceled})
	s = r.Stats()
	if s.Started != 3 || s.Finished != 3 || s.Failed != 1 || s.InFlight != 0 || s.Waiting != 0 {
		t.Fatalf("Stats = %+v; want Started 3 Finished 3 Failed 1", s)
	}
	if s.Rate != 3 {
		t.Fatalf("Stats.Rate = %v after 3 starts in 1s", s.Rate)
	}
}

func TestRateFractional(t *testing.T) {
	clock := testclock.New()
	r := throttle.NewRate(0.2, 1, throttle.WithClock(clock))
	mustTry(t, r)
	mustRefuse(t, r, 5*time.Second)
	clock.Advance(5*time.Second - 1)
	mustRefuse(t, r, 1)
	clock.Advance(1)
	mustTry(t, r)
	mustRefuse(t, r, 5*time.Second)
}

package throttle_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/internal/testclock"
	"github.com/trimeter-go/trimeter/throttle"
)

// slotMeter is what Concurrency and Adaptive have in common.
type slotMeter interface {
	throttle.Trier
	throttle.Watcher
}

// hammer runs workers × rounds attempts through m and returns the most
// that ran at once. Each attempt yields a few times so that attempts
// overlap.
func hammer(t *testing.T, m throttle.Meter, workers, rounds int) int64 {
	t.Helper()
	var running, peak atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				p, err := m.Acquire(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				n := running.Add(1)
				for old := peak.Load(); n > old && !peak.CompareAndSwap(old, n); old = peak.Load() {
				}
				for range 3 {
					runtimeYield()
				}
				running.Add(-1)
				p.Done(throttle.Outcome{Status: throttle.Succeeded, Latency: time.Millisecond})
			}
		}()
	}
	wg.Wait()
	return peak.Load()
}

func TestConcurrencyNeverExceedsItsLimit(t *testing.T) {
	for _, limit := range []int{1, 3, 8} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			c := throttle.NewConcurrency(limit)
			if peak := hammer(t, c, 16, 200); peak > int64(limit) {
				t.Fatalf("%d attempts ran at once under a limit of %d", peak, limit)
			}
			if s := c.Stats(); s.InFlight != 0 || s.Started != 16*200 || s.Finished != 16*200 {
				t.Fatalf("Stats after the run: %+v", s)
			}
		})
	}
}

// holdAll takes n permits that must be there at once.
func holdAll(t *testing.T, m throttle.Trier, n int) []throttle.Permit {
	t.Helper()
	var ps []throttle.Permit
	for i := range n {
		p, wait, err := m.TryAcquire(context.Background())
		if err != nil || p == nil {
			t.Fatalf("permit %d of %d: none (wait %v, err %v)", i+1, n, wait, err)
		}
		ps = append(ps, p)
	}
	return ps
}

func done(ps ...throttle.Permit) {
	for _, p := range ps {
		p.Done(throttle.Outcome{Status: throttle.Succeeded})
	}
}

// queue starts n Acquire calls, one after another in line.
func queue(t *testing.T, m slotMeter, n int) []<-chan acquired {
	t.Helper()
	var out []<-chan acquired
	base := m.Stats().Waiting
	for i := range n {
		out = append(out, acquireAsync(context.Background(), m))
		settle(t, "the waiter is in line", func() bool { return m.Stats().Waiting == base+int64(i+1) })
	}
	return out
}

// takeServed returns how many of ws have their permit, taking it.
func takeServed(ws []<-chan acquired) (n int, ps []throttle.Permit) {
	for _, w := range ws {
		select {
		case r := <-w:
			n++
			ps = append(ps, r.p)
		default:
		}
	}
	return n, ps
}

func TestSlotsReachTheirLimit(t *testing.T) {
	forEachSlotMeter(t, testReachesItsLimit)
}

func testReachesItsLimit(t *testing.T, make func(int, ...throttle.Option) slotMeter) {
	c := make(3)
	ps := holdAll(t, c, 3)
	mustRefuse(t, c, 0)
	if s := c.Stats(); s.InFlight != 3 || s.Limit != 3 {
		t.Fatalf("Stats: %+v", s)
	}
	done(ps[0])
	mustTry(t, c)
	done(ps[1:]...)
}

func TestConcurrencyLowerLimitDrainsFirst(t *testing.T) {
	c := throttle.NewConcurrency(4)
	ps := holdAll(t, c, 4)
	if err := c.SetLimit(2); err != nil {
		t.Fatal(err)
	}
	done(ps[0], ps[1]) // 2 in flight: at the new limit
	mustRefuse(t, c, 0)
	ws := queue(t, c, 1)
	done(ps[2]) // 1 in flight: the waiter may start
	r := <-ws[0]
	if s := c.Stats(); s.InFlight != 2 || s.Limit != 2 {
		t.Fatalf("Stats: %+v", s)
	}
	done(r.p, ps[3])
}

func TestConcurrencyHigherLimitStartsWaiters(t *testing.T) {
	c := throttle.NewConcurrency(1)
	ps := holdAll(t, c, 1)
	ws := queue(t, c, 3)
	if err := c.SetLimit(4); err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		r := <-w
		ps = append(ps, r.p)
	}
	mustRefuse(t, c, 0)
	done(ps...)
}

// slotMeters builds, for the tests that both share, a meter of each kind
// with a fixed limit of n.
var slotMeters = []struct {
	name string
	make func(n int, opts ...throttle.Option) slotMeter
}{
	{"Concurrency", func(n int, opts ...throttle.Option) slotMeter { return throttle.NewConcurrency(n, opts...) }},
	{"Adaptive", func(n int, opts ...throttle.Option) slotMeter { return throttle.NewAdaptive(n, n, opts...) }},
}

func forEachSlotMeter(t *testing.T, test func(t *testing.T, make func(n int, opts ...throttle.Option) slotMeter)) {
	for _, m := range slotMeters {
		t.Run(m.name, func(t *testing.T) { test(t, m.make) })
	}
}

func TestSlotsServeWaitersInOrder(t *testing.T) {
	forEachSlotMeter(t, testServesWaitersInOrder)
}

func testServesWaitersInOrder(t *testing.T, make func(int, ...throttle.Option) slotMeter) {
	c := make(2)
	ps := holdAll(t, c, 2)
	ws := queue(t, c, 5)
	mustRefuse(t, c, 0) // a newcomer does not overtake the line
	for i, w := range ws {
		done(ps[0])
		ps = ps[1:]
		r := <-w
		ps = append(ps, r.p)
		if n, _ := takeServed(ws[i+1:]); n != 0 {
			t.Fatalf("a waiter behind waiter %d was served with it", i)
		}
	}
	done(ps...)
}

func TestSlotsCancelWhileWaiting(t *testing.T) {
	forEachSlotMeter(t, testCancelWhileWaiting)
}

func testCancelWhileWaiting(t *testing.T, make func(int, ...throttle.Option) slotMeter) {
	c := make(1)
	ps := holdAll(t, c, 1)
	ctx, cancel := context.WithCancel(context.Background())
	w := acquireAsync(ctx, c)
	settle(t, "a waiter", func() bool { return c.Stats().Waiting == 1 })
	cancel()
	if r := <-w; r.p != nil || !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Acquire after cancel: permit %v, err %v", r.p != nil, r.err)
	}
	done(ps...)
	mustTry(t, c) // the cancelled waiter took nothing
	if p, err := c.Acquire(ctx); p != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with a cancelled context: permit %v, err %v", p != nil, err)
	}
	if s := c.Stats(); s.Waiting != 0 || s.InFlight != 0 {
		t.Fatalf("Stats: %+v", s)
	}
}

func TestSlotsPause(t *testing.T) {
	forEachSlotMeter(t, testPause)
}

func testPause(t *testing.T, make func(int, ...throttle.Option) slotMeter) {
	clock := testclock.New()
	c := make(2, throttle.WithClock(clock))
	ps := holdAll(t, c, 2)
	ps[0].Done(throttle.Outcome{Status: throttle.PushedBack, Pause: time.Second})
	mustRefuse(t, c, time.Second)
	if got := c.Stats().PausedUntil; !got.Equal(testclock.Start.Add(time.Second)) {
		t.Fatalf("PausedUntil = %v", got)
	}
	w := acquireAsync(context.Background(), c)
	clock.AdvanceWhen(t, 1, time.Second-1)
	clock.WaitFor(t, 1)
	if n, _ := takeServed([]<-chan acquired{w}); n != 0 {
		t.Fatal("started during the pause")
	}
	clock.Advance(1)
	r := <-w
	done(r.p, ps[1])
}

func TestConcurrencyBadValues(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{0, -1} {
		c := throttle.NewConcurrency(n)
		want := fmt.Sprintf("NewConcurrency(%d)", n)
		checkBad(t, c.Err(), want)
		_, err := c.Acquire(ctx)
		checkBad(t, err, want)
		_, _, err = c.TryAcquire(ctx)
		checkBad(t, err, want)
		checkBad(t, c.SetLimit(3), want)
	}
	checkBad(t, throttle.NewConcurrency(1, throttle.WithClock(nil)).Err(), "WithClock(nil)")
	c := throttle.NewConcurrency(2)
	checkBad(t, c.SetLimit(0), "SetLimit(0)")
	if s := c.Stats(); s.Limit != 2 {
		t.Fatalf("a bad SetLimit changed the limit to %d", s.Limit)
	}
}

// A pause as long as a time.Duration goes (Pause: math.MaxInt64, "for
// good") shows in Stats, some 292 years after the meter was made.
func TestSlotsPauseForGood(t *testing.T) {
	forEachSlotMeter(t, func(t *testing.T, make func(int, ...throttle.Option) slotMeter) {
		clock := testclock.New()
		c := make(1, throttle.WithClock(clock))
		ps := holdAll(t, c, 1)
		ps[0].Done(throttle.Outcome{Status: throttle.PushedBack, Pause: math.MaxInt64})
		if got, want := c.Stats().PausedUntil, clock.Now().Add(math.MaxInt64); !got.Equal(want) {
			t.Fatalf("PausedUntil = %v; want %v", got, want)
		}
	})
}

// A clock set back before the meter was made is no pause: nothing paused
// the meter, so an idle one grants.
func TestSlotsClockSetBackBeforeTheStart(t *testing.T) {
	for name, m := range map[string]func(*testclock.Clock) slotMeter{
		"Concurrency": func(c *testclock.Clock) slotMeter { return throttle.NewConcurrency(1, throttle.WithClock(c)) },
		"Adaptive":    func(c *testclock.Clock) slotMeter { return throttle.NewAdaptive(1, 4, throttle.WithClock(c)) },
		"Rate":        func(c *testclock.Clock) slotMeter { return throttle.NewRate(1, 1, throttle.WithClock(c)) },
	} {
		clock := testclock.New()
		meter := m(clock)
		clock.Advance(-time.Hour)
		p, wait, err := meter.TryAcquire(context.Background())
		if err != nil || p == nil {
			t.Errorf("%s: refused (wait %v, error %v) with nothing in flight and no pause", name, wait, err)
			continue
		}
		if s := meter.Stats(); !s.PausedUntil.IsZero() {
			t.Errorf("%s: PausedUntil %v, want none", name, s.PausedUntil)
		}
		p.Done(throttle.Outcome{Status: throttle.Succeeded})
	}
}

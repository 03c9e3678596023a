package trimeter_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/throttle"
)

// checkStats compares the counts of a Monitor with want, ignoring the
// pause, the rate and the limit.
func checkStats(t *testing.T, got, want throttle.Stats) {
	t.Helper()
	got.PausedUntil, got.Rate, got.Limit = time.Time{}, 0, 0
	if got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

// flaky fails input i on every attempt when i%3 == 0, on its first attempt
// when i%3 == 1, and never when i%3 == 2.
func flaky(a *attempts) func(context.Context, int) (int, error) {
	return func(_ context.Context, v int) (int, error) {
		k := a.next(v)
		if v%3 == 0 || (v%3 == 1 && k == 1) {
			return 0, errBoom
		}
		return v, nil
	}
}

func TestWatchCountsEveryAttempt(t *testing.T) {
	// Nine inputs, three attempts at most: 0, 3, 6 fail three times; 1, 4,
	// 7 fail once, then succeed; 2, 5, 8 succeed at once.
	want := throttle.Stats{Started: 18, Finished: 18, Failed: 12, Retried: 9}
	opts := []trimeter.Option{trimeter.MaxAtOnce(2), trimeter.KeepGoing(), trimeter.Retry(3), noBackoff}
	runs := map[string]func(mon *throttle.Monitor){
		"RunOnEach": func(mon *throttle.Monitor) {
			var a attempts
			f := flaky(&a)
			_ = trimeter.RunOnEach(context.Background(), newProbe(9).seq(), func(ctx context.Context, v int) error {
				_, err := f(ctx, v)
				return err
			}, append(opts, trimeter.Watch(mon))...)
		},
		"AMap": func(mon *throttle.Monitor) {
			var a attempts
			for range trimeter.AMap(context.Background(), newProbe(9).seq(), flaky(&a), append(opts, trimeter.Watch(mon))...) {
			}
		},
		"Then": func(mon *throttle.Monitor) {
			var a attempts
			for range trimeter.Then(context.Background(), withNilErrors(newProbe(9).seq()), flaky(&a), append(opts, trimeter.Watch(mon))...) {
			}
		},
	}
	for name, run := range runs {
		t.Run(name, func(t *testing.T) {
			mon := &throttle.Monitor{}
			run(mon)
			checkStats(t, mon.Stats(), want)
			if l := mon.Stats().Limit; l != 2 {
				t.Errorf("Limit = %d, want 2", l)
			}
		})
	}
	t.Run("one monitor over two calls", func(t *testing.T) {
		mon := &throttle.Monitor{}
		runs["RunOnEach"](mon)
		runs["AMap"](mon)
		checkStats(t, mon.Stats(), throttle.Stats{Started: 36, Finished: 36, Failed: 24, Retried: 18})
	})
}

func TestWatchSeesTasksInFlightAndWaiting(t *testing.T) {
	// Three calls block; the starter then waits for a rate token on a
	// clock that does not move.
	clk := newFakeClock()
	mon := throttle.NewMonitor(clk)
	var blocked blocker
	in := newProbe(-1)
	fn := func(ctx context.Context, v int) (int, error) {
		if v == 0 {
			return v, nil
		}
		return 0, blocked.block(t, ctx)
	}
	for _, err := range trimeter.AMap(context.Background(), in.seq(), fn, trimeter.Watch(mon), trimeter.WithClock(clk),
		trimeter.MaxPerSecond(1), trimeter.MaxBurst(4)) {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		blocked.started.await(t, 3, "three blocked calls")
		eventually(t, func() bool { s := mon.Stats(); return s.InFlight == 3 && s.Waiting == 1 }, "3 in flight and 1 waiting")
		break
	}
	blocked.checkAllCancelled(t)
	// Calls that end because the run cancelled them did not fail.
	checkStats(t, mon.Stats(), throttle.Stats{Started: 4, Finished: 4})
	checkCleanedUp(t, in)
}

func TestWatchSeesInputsWaitingForTheirKey(t *testing.T) {
	release := make(chan struct{})
	mon := &throttle.Monitor{}
	var started counter
	done := make(chan error, 1)
	go func() {
		done <- trimeter.RunOnEach(context.Background(), newProbe(4).seq(), func(context.Context, int) error {
			started.add(1)
			<-release
			return nil
		}, trimeter.Watch(mon), trimeter.PerKey(func(int) string { return "k" }, trimeter.MaxAtOnce(1)))
	}()
	started.await(t, 1, "the key's first call")
	eventually(t, func() bool { s := mon.Stats(); return s.InFlight == 1 && s.Waiting == 3 }, "1 in flight and 3 waiting for the key")
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("unexpected error %v", err)
	}
	checkStats(t, mon.Stats(), throttle.Stats{Started: 4, Finished: 4})
}

func TestWatchSeesThePauseAndTheRate(t *testing.T) {
	clk := newFakeClock()
	mon := throttle.NewMonitor(clk)
	release := make(chan struct{})
	fn := func(_ context.Context, v int) error {
		if v == 0 {
			<-release
			return trimeter.Pushback(2*time.Second, errBusy)
		}
		return nil
	}
	done := make(chan error, 1)
	go func() {
		done <- trimeter.RunOnEach(context.Background(), newProbe(5).seq(), fn, trimeter.Watch(mon), trimeter.WithClock(clk),
			trimeter.MaxAtOnce(1), trimeter.KeepGoing())
	}()
	close(release)
	eventually(t, func() bool { return mon.Stats().Finished == 1 }, "the push-back noted")
	if got, want := mon.Stats().PausedUntil, epoch.Add(2*time.Second); !got.Equal(want) {
		t.Errorf("PausedUntil = %v, want %v", got, want)
	}
	stop := drive(clk, 500*time.Millisecond)
	err := <-done
	stop()
	if !errors.Is(err, errBusy) {
		t.Errorf("got %v, want the push-back", err)
	}
	s := mon.Stats()
	if !s.PausedUntil.IsZero() {
		t.Errorf("PausedUntil = %v once the pause is over, want zero", s.PausedUntil)
	}
	// Five starts from 0 to 2s.
	if elapsed := clk.Since(epoch); elapsed != 2*time.Second || s.Rate != 2.5 {
		t.Errorf("Rate = %v at %v, want 2.5 at 2s", s.Rate, elapsed)
	}
	checkStats(t, s, throttle.Stats{Started: 5, Finished: 5, Failed: 1})
}

func TestWatchAfterAFailFastRun(t *testing.T) {
	for _, limit := range []int{1, 3} {
		t.Run(fmt.Sprintf("MaxAtOnce(%d)", limit), func(t *testing.T) {
			mon := &throttle.Monitor{}
			var blocked blocker
			fn := func(ctx context.Context, v int) (int, error) {
				if v == 0 {
					blocked.started.await(t, limit-1, "the other calls")
					return 0, errBoom
				}
				return 0, blocked.block(t, ctx)
			}
			got := collect(trimeter.AMap(context.Background(), newProbe(10).seq(), fn, trimeter.Watch(mon), trimeter.MaxAtOnce(limit), trimeter.Ordered()))
			if len(got) != 1 || !errors.Is(got[0].err, errBoom) {
				t.Errorf("got %v, want errBoom alone", got)
			}
			s := mon.Stats()
			// The cancelled calls did not fail: the first error did.
			checkStats(t, s, throttle.Stats{Started: int64(limit), Finished: int64(limit), Failed: 1})
		})
	}
}

// Inputs still waiting for their key when the run stops (a break, a
// failure) wait no more: the monitor, which may outlive the run and serve
// other calls, does not count them.
func TestWatchAfterARunStopsWithInputsWaitingForTheirKey(t *testing.T) {
	sameKey := trimeter.PerKey(func(int) string { return "k" }, trimeter.MaxAtOnce(1))
	// How many started before the stop took hold depends on timing; that
	// nothing is left waiting or in flight does not.
	checkSettled := func(t *testing.T, s throttle.Stats) {
		t.Helper()
		if s.Waiting != 0 || s.InFlight != 0 || s.Started < 1 || s.Finished != s.Started {
			t.Errorf("Stats = %+v, want nothing waiting or in flight, and every start finished", s)
		}
	}
	t.Run("a break", func(t *testing.T) {
		mon := &throttle.Monitor{}
		for range trimeter.AMap(context.Background(), newProbe(6).seq(), square, trimeter.Watch(mon), sameKey) {
			eventually(t, func() bool { return mon.Stats().Waiting >= 4 }, "the other inputs waiting for the key")
			break
		}
		checkSettled(t, mon.Stats())
	})
	t.Run("a failure", func(t *testing.T) {
		mon := &throttle.Monitor{}
		// The first call fails once the other five wait for the key.
		fail := func(context.Context, int) error {
			eventually(t, func() bool { return mon.Stats().Waiting == 5 }, "five inputs waiting for the key")
			return errBoom
		}
		if err := trimeter.RunOnEach(context.Background(), newProbe(6).seq(), fail, trimeter.Watch(mon), sameKey, trimeter.MaxAtOnce(3)); !errors.Is(err, errBoom) {
			t.Fatalf("got %v, want errBoom", err)
		}
		checkSettled(t, mon.Stats())
	})
}

// acquireOnly hides a meter's TryAcquire: the run must wait in its
// Acquire.
type acquireOnly struct{ m throttle.Meter }

func (a acquireOnly) Acquire(ctx context.Context) (throttle.Permit, error) { return a.m.Acquire(ctx) }

// A task waiting for a shared meter counts as Waiting, whether the run
// asks the meter first (a throttle.Trier) or waits in its Acquire at once.
func TestWatchSeesATaskWaitingForAMeterThatCannotBeAsked(t *testing.T) {
	for _, trier := range []bool{true, false} {
		t.Run(fmt.Sprintf("trier=%v", trier), func(t *testing.T) {
			sem := throttle.NewConcurrency(1)
			var m throttle.Meter = sem
			if !trier {
				m = acquireOnly{sem}
			}
			mon := throttle.NewMonitor(newFakeClock())
			release := make(chan struct{})
			running := make(chan struct{}, 2)
			done := make(chan error, 1)
			go func() {
				done <- trimeter.RunOnEach(context.Background(), slices.Values([]int{0, 1}), func(context.Context, int) error {
					running <- struct{}{}
					<-release
					return nil
				}, trimeter.MaxAtOnce(2), trimeter.WithMeter(m), trimeter.Watch(mon))
			}()
			// The monitor counts a start before fn runs, and a wait before
			// the meter does.
			<-running
			eventually(t, func() bool { return sem.Stats().Waiting == 1 }, "the second task waiting in the meter")
			if s := mon.Stats(); s.InFlight != 1 || s.Waiting != 1 {
				t.Errorf("Watch shows %d in flight and %d waiting; want 1 and 1", s.InFlight, s.Waiting)
			}
			close(release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A call's push-back pause stops showing in its monitor when the call
// ends: a later call on the same monitor, with no pause of its own, shows
// none.
func TestWatchDropsTheCallsPauseWhenTheCallEnds(t *testing.T) {
	clock := newFakeClock()
	mon := throttle.NewMonitor(clock)
	pushBack := func(context.Context, int) error { return trimeter.Pushback(time.Hour, errBusy) }
	if err := trimeter.RunOnEach(context.Background(), slices.Values([]int{0}), pushBack, trimeter.Watch(mon), trimeter.WithClock(clock)); !errors.Is(err, errBusy) {
		t.Fatalf("RunOnEach = %v, want the push-back's error", err)
	}
	if s := mon.Stats(); !s.PausedUntil.IsZero() {
		t.Errorf("PausedUntil = %v once the call that paused has ended, want none", s.PausedUntil)
	}
	var during throttle.Stats
	look := func(context.Context, int) error { during = mon.Stats(); return nil }
	if err := trimeter.RunOnEach(context.Background(), slices.Values([]int{1}), look, trimeter.Watch(mon), trimeter.WithClock(clock)); err != nil {
		t.Fatal(err)
	}
	if !during.PausedUntil.IsZero() {
		t.Errorf("a later call without a pause shows PausedUntil = %v, want none", during.PausedUntil)
	}
}

// A Monitor's Limit is the MaxAtOnce of the call that began last, zero
// for one without: a call with no limit does not show an earlier one's.
func TestWatchShowsTheLimitOfTheLastCall(t *testing.T) {
	var mon throttle.Monitor
	noop := func(context.Context, int) error { return nil }
	for _, want := range []int{3, 0, 1, 0} {
		opts := []trimeter.Option{trimeter.Watch(&mon)}
		if want > 0 {
			opts = append(opts, trimeter.MaxAtOnce(want))
		}
		if err := trimeter.RunOnEach(context.Background(), slices.Values([]int{1, 2}), noop, opts...); err != nil {
			t.Fatal(err)
		}
		if got := mon.Stats().Limit; got != int64(want) {
			t.Errorf("after a call with MaxAtOnce %d, Limit = %d", want, got)
		}
	}
}

// A call that fails with a bad option never began: its Monitor keeps the
// Limit of the call before.
func TestWatchLimitIsNotSetByACallWithABadOption(t *testing.T) {
	var mon throttle.Monitor
	noop := func(context.Context, int) error { return nil }
	if err := trimeter.RunOnEach(context.Background(), slices.Values([]int{1}), noop, trimeter.Watch(&mon), trimeter.MaxAtOnce(3)); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]trimeter.Option{
		"a meter with a bad value": trimeter.WithMeter(throttle.NewConcurrency(0)),
		"a bad PerKey":             trimeter.PerKey(func(s string) string { return s }),
	} {
		err := trimeter.RunOnEach(context.Background(), slices.Values([]int{1}), noop, trimeter.Watch(&mon), trimeter.MaxAtOnce(5), bad)
		if !errors.Is(err, trimeter.ErrBadOption) {
			t.Fatalf("%s: got %v, want ErrBadOption", name, err)
		}
		if got := mon.Stats().Limit; got != 3 {
			t.Errorf("after a call with %s, Limit = %d, want 3, the last call's that began", name, got)
		}
	}
}

// A call the run cancels that returns its context's cause (context.Cause,
// as the package doc's Stopping section tells fn it may read) was
// cancelled, not failed: the monitor counts no failure for it, and the
// meters hear Canceled. That holds after a break, after RunAny's answer
// and after a fail-fast failure (whose cause is the failure itself).
func TestWatchACancelledCallReturningItsCauseDidNotFail(t *testing.T) {
	cause := func(t *testing.T, b *blocker) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			b.started.add(1)
			awaitCancel(t, ctx)
			return context.Cause(ctx)
		}
	}
	check := func(t *testing.T, mon *throttle.Monitor, m *outcomeMeter, failed int64) {
		t.Helper()
		checkStats(t, mon.Stats(), throttle.Stats{Started: 3, Finished: 3, Failed: failed})
		m.mu.Lock()
		defer m.mu.Unlock()
		canceled := 0
		for _, o := range m.told {
			if o.Status == throttle.Canceled {
				canceled++
			}
		}
		if canceled != 2 {
			t.Errorf("the meter was told %+v, want 2 cancelled attempts", m.told)
		}
	}
	t.Run("a break", func(t *testing.T) {
		mon, m := &throttle.Monitor{}, &outcomeMeter{}
		var b blocker
		block := cause(t, &b)
		fn := func(ctx context.Context, v int) (int, error) {
			if v == 0 {
				return 0, nil
			}
			return 0, block(ctx)
		}
		for range trimeter.AMap(context.Background(), slices.Values([]int{0, 1, 2}), fn,
			trimeter.MaxAtOnce(3), trimeter.Ordered(), trimeter.Watch(mon), trimeter.WithMeter(m)) {
			b.started.await(t, 2, "the calls that block")
			break
		}
		check(t, mon, m, 0)
	})
	t.Run("RunAny's answer", func(t *testing.T) {
		mon, m := &throttle.Monitor{}, &outcomeMeter{}
		var b blocker
		block := cause(t, &b)
		blocks := func(ctx context.Context) (int, error) { return 0, block(ctx) }
		answers := func(context.Context) (int, error) {
			b.started.await(t, 2, "the calls that block")
			return 7, nil
		}
		got, err := trimeter.RunAny(context.Background(), slices.Values([]func(context.Context) (int, error){blocks, blocks, answers}),
			trimeter.Watch(mon), trimeter.WithMeter(m))
		if got != 7 || err != nil {
			t.Fatalf("RunAny = %d, %v; want 7", got, err)
		}
		check(t, mon, m, 0)
	})
	t.Run("a fail-fast failure", func(t *testing.T) {
		mon, m := &throttle.Monitor{}, &outcomeMeter{}
		var b blocker
		block := cause(t, &b)
		fn := func(ctx context.Context, v int) error {
			if v == 0 {
				b.started.await(t, 2, "the calls that block")
				return errBoom
			}
			return block(ctx)
		}
		err := trimeter.RunOnEach(context.Background(), slices.Values([]int{0, 1, 2}), fn,
			trimeter.MaxAtOnce(3), trimeter.Watch(mon), trimeter.WithMeter(m))
		if err != errBoom {
			t.Fatalf("RunOnEach = %v, want errBoom", err)
		}
		check(t, mon, m, 1)
	})
}

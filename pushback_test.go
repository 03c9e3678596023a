package trimeter_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/internal/testclock"
	"github.com/trimeter-go/trimeter/throttle"
)

var errBusy = errors.New("busy: come back later")

// busyError is an error type a remote side's answer might be decoded into.
type busyError struct{ retryAfter time.Duration }

func (e *busyError) Error() string { return fmt.Sprintf("busy for %v", e.retryAfter) }

func TestPushbackErrorSeesThrough(t *testing.T) {
	inner := &busyError{3 * time.Second}
	err := trimeter.Pushback(3*time.Second, fmt.Errorf("GET /: %w", inner))
	var pb *trimeter.PushbackError
	if !errors.As(err, &pb) || pb.After != 3*time.Second {
		t.Errorf("errors.As finds %+v, want a *PushbackError of 3s", pb)
	}
	var be *busyError
	if !errors.As(err, &be) || be != inner {
		t.Errorf("errors.As does not see through to the wrapped error")
	}
	if !errors.Is(trimeter.Pushback(time.Second, errBusy), errBusy) {
		t.Errorf("errors.Is does not see through to the wrapped error")
	}
	// Wrapped again by a retry, a push-back is still found.
	retried := &trimeter.RetryError{Errs: []error{errBoom, err}}
	if !errors.As(retried, &pb) || !errors.As(retried, &be) || !errors.Is(retried, errBoom) {
		t.Errorf("errors.As and errors.Is do not see through a RetryError holding a push-back")
	}
}

// pushbackRunners run fn over inputs one at a time, keeping going, through
// each entry point; they return every error reported.
var pushbackRunners = []struct {
	name string
	run  func(ctx context.Context, n int, fn func(context.Context, int) (int, error), opts ...trimeter.Option) []error
}{
	{"RunOnEach", func(ctx context.Context, n int, fn func(context.Context, int) (int, error), opts ...trimeter.Option) []error {
		err := trimeter.RunOnEach(ctx, newProbe(n).seq(), func(ctx context.Context, v int) error {
			_, err := fn(ctx, v)
			return err
		}, opts...)
		if err == nil {
			return nil
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			return j.Unwrap()
		}
		return []error{err}
	}},
	{"AMap", func(ctx context.Context, n int, fn func(context.Context, int) (int, error), opts ...trimeter.Option) []error {
		var errs []error
		for _, err := range trimeter.AMap(ctx, newProbe(n).seq(), fn, opts...) {
			if err != nil {
				errs = append(errs, err)
			}
		}
		return errs
	}},
}

func TestPushbackPausesTheWholeCall(t *testing.T) {
	for _, r := range pushbackRunners {
		t.Run(r.name+" keeping going", func(t *testing.T) {
			clk := newFakeClock()
			l := newTimeline(clk)
			// Input 0 asks for 2s; inputs 1..3 start when the pause ends.
			want := map[string]func(time.Duration) int{"start": func(e time.Duration) int {
				if e < 2*time.Second {
					return 1
				}
				return 4
			}}
			stop := stepWhen(t, clk, 500*time.Millisecond, settledAt(l, want))
			fn := func(_ context.Context, v int) (int, error) {
				l.note("start")
				if v == 0 {
					return 0, trimeter.Pushback(2*time.Second, errBusy)
				}
				return v, nil
			}
			errs := r.run(context.Background(), 4, fn, trimeter.MaxAtOnce(1), trimeter.KeepGoing(), trimeter.WithClock(clk))
			stop()
			if got, want := l.of("start"), []time.Duration{0, 2 * time.Second, 2 * time.Second, 2 * time.Second}; !slices.Equal(got, want) {
				t.Errorf("started at %v, want %v", got, want)
			}
			var pb *trimeter.PushbackError
			if len(errs) != 1 || !errors.Is(errs[0], errBusy) || !errors.As(errs[0], &pb) || pb.After != 2*time.Second {
				t.Errorf("errors %v, want the push-back of input 0 alone", errs)
			}
		})
		t.Run(r.name+" failing fast", func(t *testing.T) {
			clk := newFakeClock()
			var calls counter
			fn := func(context.Context, int) (int, error) {
				calls.add(1)
				return 0, trimeter.Pushback(time.Second, errBusy)
			}
			errs := r.run(context.Background(), 5, fn, trimeter.MaxAtOnce(1), trimeter.WithClock(clk))
			var pb *trimeter.PushbackError
			if len(errs) != 1 || !errors.Is(errs[0], errBusy) || !errors.As(errs[0], &pb) {
				t.Errorf("errors %v, want the push-back once", errs)
			}
			if c := calls.load(); c != 1 {
				t.Errorf("%d calls, want 1: the push-back ends the call", c)
			}
		})
	}
}

func TestPushbackUnderPerKeyPausesOnlyThatKey(t *testing.T) {
	clk := newFakeClock()
	l := newTimeline(clk)
	want := map[string]func(time.Duration) int{
		"a": func(e time.Duration) int {
			if e < 2*time.Second {
				return 1
			}
			return 3
		},
		"b": func(time.Duration) int { return 3 },
	}
	stop := stepWhen(t, clk, 500*time.Millisecond, settledAt(l, want))
	fn := func(_ context.Context, j job) error {
		l.note(j.key)
		if j.id == 0 {
			return trimeter.Pushback(2*time.Second, errBusy)
		}
		return nil
	}
	err := trimeter.RunOnEach(context.Background(), slices.Values(jobsOf("a", "b", "a", "b", "a", "b")), fn,
		trimeter.MaxAtOnce(1), trimeter.KeepGoing(), trimeter.WithClock(clk), trimeter.PerKey(jobKey))
	stop()
	if !errors.Is(err, errBusy) {
		t.Errorf("got %v, want the push-back", err)
	}
	if got, want := l.of("a"), []time.Duration{0, 2 * time.Second, 2 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("key a started at %v, want %v", got, want)
	}
	if got, want := l.of("b"), []time.Duration{0, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("key b started at %v, want %v", got, want)
	}
}

func TestPushbackShorterNeverShortensALongerOne(t *testing.T) {
	for _, perKey := range []bool{false, true} {
		for _, pauses := range [][2]time.Duration{{3 * time.Second, time.Second}, {time.Second, 3 * time.Second}} {
			t.Run(fmt.Sprintf("pauses %v under PerKey %v", pauses, perKey), func(t *testing.T) {
				checkLongestPauseWins(t, pauses, perKey)
			})
		}
	}
}

// checkLongestPauseWins runs inputs 0 and 1 together; they return the
// push-backs of pauses, 0 first; input 2 must start when the longer one
// ends.
func checkLongestPauseWins(t *testing.T, pauses [2]time.Duration, perKey bool) {
	clk := newFakeClock()
	mon := throttle.NewMonitor(clk)
	l := newTimeline(clk)
	release := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	var started counter
	fn := func(_ context.Context, v int) error {
		if v == 2 {
			l.note("2")
			return nil
		}
		started.add(1)
		<-release[v]
		return trimeter.Pushback(pauses[v], errBusy)
	}
	opts := []trimeter.Option{trimeter.KeepGoing(), trimeter.WithClock(clk), trimeter.Watch(mon)}
	if perKey {
		opts = append(opts, trimeter.PerKey(func(int) string { return "k" }, trimeter.MaxAtOnce(2)))
	} else {
		opts = append(opts, trimeter.MaxAtOnce(2))
	}
	done := make(chan error, 1)
	go func() { done <- trimeter.RunOnEach(context.Background(), newProbe(3).seq(), fn, opts...) }()
	started.await(t, 2, "inputs 0 and 1 running together")
	for i := range release {
		close(release[i])
		eventually(t, func() bool { return mon.Stats().Finished == int64(i+1) }, "a push-back noted")
	}
	longest := max(pauses[0], pauses[1])
	want := map[string]func(time.Duration) int{"2": func(e time.Duration) int {
		if e < longest {
			return 0
		}
		return 1
	}}
	stop := stepWhen(t, clk, 500*time.Millisecond, settledAt(l, want))
	err := <-done
	stop()
	if !errors.Is(err, errBusy) {
		t.Errorf("got %v, want the push-backs", err)
	}
	if got := l.of("2"); !slices.Equal(got, []time.Duration{longest}) {
		t.Errorf("input 2 started at %v, want %v", got, longest)
	}
}

func TestPushbackPausesASharedMeterForOtherCalls(t *testing.T) {
	meters := []struct {
		name string
		make func(clk throttle.Option) throttle.Meter
	}{
		{"Concurrency", func(clk throttle.Option) throttle.Meter { return throttle.NewConcurrency(10, clk) }},
		{"Rate", func(clk throttle.Option) throttle.Meter { return throttle.NewRate(1000, 1000, clk) }},
	}
	cases := []struct {
		pauses []time.Duration
		want   time.Duration
	}{
		{[]time.Duration{2 * time.Second}, 2 * time.Second},
		{[]time.Duration{3 * time.Second, time.Second}, 3 * time.Second},
		{[]time.Duration{time.Second, 3 * time.Second}, 3 * time.Second},
	}
	for _, m := range meters {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s after push-backs of %v", m.name, c.pauses), func(t *testing.T) {
				// The meter has its own clock; the calls have another,
				// which never moves: the pause is the meter's.
				meterClk, callClk := newFakeClock(), newFakeClock()
				meter := m.make(throttle.WithClock(meterClk))
				pushBackTogether(t, meter, callClk, c.pauses)
				l := newTimeline(meterClk)
				want := map[string]func(time.Duration) int{"other": func(e time.Duration) int {
					if e < c.want {
						return 0
					}
					return 2
				}}
				stop := stepWhen(t, meterClk, 500*time.Millisecond, settledAt(l, want))
				err := trimeter.RunOnEach(context.Background(), newProbe(2).seq(), func(context.Context, int) error {
					l.note("other")
					return nil
				}, trimeter.WithMeter(meter), trimeter.WithClock(callClk))
				stop()
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if got := l.of("other"); !slices.Equal(got, []time.Duration{c.want, c.want}) {
					t.Errorf("the other call started at %v, want both at %v", got, c.want)
				}
			})
		}
	}
}

// pushBackTogether runs one call per pause, all at once through meter;
// once all have started, each in turn returns its push-back, which ends it.
func pushBackTogether(t *testing.T, meter throttle.Meter, clk clockwork.Clock, pauses []time.Duration) {
	var started counter
	errs := make([]chan error, len(pauses))
	release := make([]chan struct{}, len(pauses))
	for i, d := range pauses {
		errs[i], release[i] = make(chan error, 1), make(chan struct{})
		go func() {
			errs[i] <- trimeter.RunOnEach(context.Background(), newProbe(1).seq(), func(context.Context, int) error {
				started.add(1)
				<-release[i]
				return trimeter.Pushback(d, errBusy)
			}, trimeter.WithMeter(meter), trimeter.WithClock(clk))
		}()
	}
	started.await(t, len(pauses), "calls through the meter")
	for i := range pauses {
		close(release[i])
		if err := <-errs[i]; !errors.Is(err, errBusy) {
			t.Errorf("got %v, want the push-back: it ends the call under fail-fast", err)
		}
	}
}

func TestPushbackPausesAKeysSharedMeterForOtherCalls(t *testing.T) {
	clk := newFakeClock()
	meters := &keyedMeters{newMeter: func() throttle.Meter { return throttle.NewConcurrency(10, throttle.WithClock(clk)) }}
	perKey := trimeter.PerKey(jobKey, trimeter.WithMeter(meters))
	err := trimeter.RunOnEach(context.Background(), slices.Values(jobsOf("a")), func(context.Context, job) error {
		return trimeter.Pushback(2*time.Second, errBusy)
	}, perKey, trimeter.WithClock(clk))
	if !errors.Is(err, errBusy) {
		t.Fatalf("got %v, want the push-back", err)
	}
	// Another call through the same meters: key a holds off for 2s, key b
	// does not.
	l := newTimeline(clk)
	want := map[string]func(time.Duration) int{
		"a": func(e time.Duration) int {
			if e < 2*time.Second {
				return 0
			}
			return 2
		},
		"b": func(time.Duration) int { return 2 },
	}
	stop := stepWhen(t, clk, 500*time.Millisecond, settledAt(l, want))
	err = trimeter.RunOnEach(context.Background(), slices.Values(jobsOf("a", "b", "a", "b")), func(_ context.Context, j job) error {
		l.note(j.key)
		return nil
	}, perKey, trimeter.WithClock(clk))
	stop()
	if err != nil {
		t.Fatalf("unexpected error %v", err)
	}
	if got := l.of("a"); !slices.Equal(got, []time.Duration{2 * time.Second, 2 * time.Second}) {
		t.Errorf("key a started at %v, want both at 2s", got)
	}
	if got := l.of("b"); !slices.Equal(got, []time.Duration{0, 0}) {
		t.Errorf("key b started at %v, want both at 0", got)
	}
}

// A push-back that comes while the input is producing its next value (a
// slow source) holds that input too: it starts once the pause is over, not
// at once. The consumer holds the push-back's result unreceived, so that
// the scheduler, once input 2 is in, has no slot for input 3 and sets no
// timer of its own: the only timer is the wait for the pause.
func TestPushbackHoldsTheInputPulledDuringThePause(t *testing.T) {
	// The workers taking turns to start tasks (a rate makes them): there
	// a task started during the pause always started before the clock
	// moved. (The feeder's path has the same check, but its own wait for
	// the pause before reserving the next slot races the worker that would
	// start the task, so a test of it could not fail reliably.)
	cases := map[string][]trimeter.Option{
		"MaxAtOnce(2) and a rate": {trimeter.MaxAtOnce(2), trimeter.MaxPerSecond(1), trimeter.MaxBurst(10)},
	}
	for name, lim := range cases {
		t.Run(name, func(t *testing.T) {
			clock := testclock.New()
			mon := throttle.NewMonitor(clock)
			producing := make(chan struct{}) // closed once input 2 is on its way
			in := func(yield func(int) bool) {
				if !yield(0) || !yield(1) {
					return
				}
				close(producing)
				eventually(t, func() bool { return !mon.Stats().PausedUntil.IsZero() }, "the push-back's pause")
				yield(2)
			}
			var startedAt atomic.Int64 // when input 2 started, on the clock
			fn := func(_ context.Context, v int) (int, error) {
				switch v {
				case 1:
					<-producing
					return 0, trimeter.Pushback(time.Hour, errBusy)
				case 2:
					startedAt.Store(int64(clock.Elapsed()))
				}
				return v, nil
			}
			opts := append(slices.Clone(lim), trimeter.KeepGoing(), trimeter.WithClock(clock), trimeter.Watch(mon))
			release := make(chan struct{})
			done := make(chan int, 1)
			go func() {
				n := 0
				for range trimeter.AMap(context.Background(), in, fn, opts...) {
					if n == 0 {
						<-release // hold on to the first result
					}
					n++
				}
				done <- n
			}()
			clock.AdvanceWhen(t, 1, time.Hour) // the pause, which input 2 waits out
			close(release)
			if n := <-done; n != 3 {
				t.Fatalf("yielded %d results, want 3", n)
			}
			if at := time.Duration(startedAt.Load()); at < time.Hour {
				t.Errorf("input 2 started %v into the run, during the push-back's pause of 1h", at)
			}
		})
	}
}

// A push-back that comes while the next task waits for its rate token
// holds that task too: it does not start when the token comes, but when
// the pause ends.
func TestPushbackHoldsATaskWaitingForItsToken(t *testing.T) {
	clock := testclock.New()
	mon := throttle.NewMonitor(clock)
	pushBack := make(chan struct{})
	var startedAt atomic.Int64 // when input 1 started, on the clock
	startedAt.Store(-1)
	fn := func(_ context.Context, v int) error {
		if v == 0 {
			<-pushBack
			return trimeter.Pushback(time.Hour, errBusy)
		}
		startedAt.Store(int64(clock.Elapsed()))
		return nil
	}
	done := make(chan error, 1)
	go func() {
		done <- trimeter.RunOnEach(context.Background(), newProbe(2).seq(), fn, trimeter.MaxAtOnce(2),
			trimeter.MaxPerSecond(1), trimeter.KeepGoing(), trimeter.WithClock(clock), trimeter.Watch(mon))
	}()
	clock.WaitFor(t, 1) // input 1 waits for its token
	close(pushBack)
	eventually(t, func() bool { return !mon.Stats().PausedUntil.IsZero() }, "the push-back's pause")
	clock.Advance(time.Second) // the token is due; the pause is not over
	clock.AdvanceWhen(t, 1, time.Hour)
	if err := <-done; !errors.Is(err, errBusy) {
		t.Errorf("RunOnEach = %v, want the push-back's error", err)
	}
	if at := time.Duration(startedAt.Load()); at < time.Hour {
		t.Errorf("input 1 started %v into the run, during the push-back's pause of 1h", at)
	}
}

// Under PerKey, a push-back pauses its key alone. When the pause begins
// while an input of that key waits for the call's token, the input waits
// aside once it has the token (which goes back), and an input of another
// key starts meanwhile, with that token.
func TestPushbackOfAKeyDoesNotHoldUpOtherKeysWhileItsInputHadATokenComing(t *testing.T) {
	clock := testclock.New()
	mon := throttle.NewMonitor(clock)
	pushBack := make(chan struct{})
	var a1At, b2At atomic.Int64 // when inputs 1 and 2 started, on the clock
	a1At.Store(-1)
	b2At.Store(-1)
	fn := func(_ context.Context, j job) error {
		switch j.id {
		case 0:
			<-pushBack
			return trimeter.Pushback(time.Hour, errBusy)
		case 1:
			a1At.Store(int64(clock.Elapsed()))
		case 2:
			b2At.Store(int64(clock.Elapsed()))
		}
		return nil
	}
	done := make(chan error, 1)
	go func() {
		done <- trimeter.RunOnEach(context.Background(), slices.Values(jobsOf("a", "a", "b")), fn,
			trimeter.MaxAtOnce(4), trimeter.MaxPerSecond(1), trimeter.PerKey(jobKey, trimeter.MaxAtOnce(2)),
			trimeter.KeepGoing(), trimeter.WithClock(clock), trimeter.Watch(mon))
	}()
	clock.WaitFor(t, 1) // input 1, of key a, waits for the call's token
	close(pushBack)
	// The pause begins before the monitor counts the attempt finished.
	eventually(t, func() bool { return mon.Stats().Finished == 1 }, "key a's push-back")
	clock.Advance(time.Second) // input 1's token is due; key a's pause is not over
	eventually(t, func() bool { return b2At.Load() >= 0 }, "key b's input to start during key a's pause")
	if at := time.Duration(b2At.Load()); at != time.Second {
		t.Errorf("key b's input started %v into the run, want 1s, with the token key a's input gave back", at)
	}
	stop := drive(clock.FakeClock, time.Minute) // to the end of key a's pause
	defer stop()
	select {
	case err := <-done:
		if !errors.Is(err, errBusy) {
			t.Errorf("RunOnEach = %v, want the push-back's error", err)
		}
	case <-time.After(patience):
		t.Fatalf("RunOnEach has not returned %v after the clock began to move", patience)
	}
	if at := time.Duration(a1At.Load()); at < time.Hour {
		t.Errorf("key a's input 1 started %v into the run, during its key's pause of 1h", at)
	}
}

// A push-back of zero or less holds nothing off, and the retry after it
// takes no backoff: the clock never moves, so a backoff would never end.
func TestPushbackOfNoTimeRetriesAtOnce(t *testing.T) {
	for _, after := range []time.Duration{0, -time.Second} {
		clock := testclock.New()
		var attempts atomic.Int32
		fn := func(context.Context, int) error {
			if attempts.Add(1) == 1 {
				return trimeter.Pushback(after, errors.New("busy"))
			}
			return nil
		}
		err := trimeter.RunOnEach(context.Background(), slices.Values([]int{1}), fn,
			trimeter.Retry(2), trimeter.Backoff(time.Hour, time.Hour), trimeter.WithClock(clock))
		if err != nil || attempts.Load() != 2 {
			t.Errorf("Pushback(%v): %d attempts, err %v; want 2 and nil", after, attempts.Load(), err)
		}
	}
}

// Under KeepGoing, a push-back on the last input ends the run at once: the
// pause holds up the starts of later inputs, and there are none. (The
// clock never moves here, so a run that waited for the pause would never
// end.)
func TestPushbackOnTheLastInputDoesNotHoldTheRunOpen(t *testing.T) {
	for _, lc := range limitCases {
		if strings.Contains(lc.name, "meter") {
			// The push-back would pause the meter the cases share; a
			// meter of this test's own, which each run makes anew.
			lc.opts = []trimeter.Option{trimeter.MaxAtOnce(3)}
		}
		t.Run(lc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), patience) // a watchdog
			defer cancel()
			busy := errors.New("busy")
			fn := func(_ context.Context, v int) (int, error) {
				if v == 1 {
					return 0, trimeter.Pushback(time.Minute, busy)
				}
				return v, nil
			}
			opts := func() []trimeter.Option {
				o := append(slices.Clone(lc.opts), trimeter.WithClock(testclock.New()))
				if strings.Contains(lc.name, "meter") {
					o = append(o, trimeter.WithMeter(throttle.NewConcurrency(1000)))
				}
				return o
			}
			n := 0
			for in, out := range trimeter.Outcomes(ctx, slices.Values([]int{0, 1}), fn, opts()...) {
				if in.Index < 0 {
					t.Fatalf("the run ended with %v: it waited for the pause", out.Err)
				}
				n++
			}
			if n != 2 {
				t.Errorf("%d outcomes, want 2", n)
			}
			err := trimeter.RunOnEach(ctx, slices.Values([]int{0, 1}), func(ctx context.Context, v int) error {
				_, err := fn(ctx, v)
				return err
			}, append(opts(), trimeter.KeepGoing())...)
			if !errors.Is(err, busy) || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("RunOnEach = %v, want the push-back's error alone", err)
			}
		})
	}
}

// An upstream error starts no task, so a push-back's pause does not hold
// it: it passes through a stage at once on every path, as it passes by the
// stage's meters. The clock never moves here; a watchdog ends the run if
// the error waits for the pause.
func TestAnUpstreamErrorPassesThroughAPushbackPause(t *testing.T) {
	errUp := errors.New("upstream failed")
	paths := map[string]func() []trimeter.Option{ // a new meter for each run: a push-back pauses it
		"MaxAtOnce(1)": func() []trimeter.Option { return []trimeter.Option{trimeter.MaxAtOnce(1)} },
		"MaxAtOnce(3)": func() []trimeter.Option { return []trimeter.Option{trimeter.MaxAtOnce(3)} },
		"MaxAtOnce(3) and a meter": func() []trimeter.Option {
			return []trimeter.Option{trimeter.MaxAtOnce(3), trimeter.WithMeter(throttle.NewConcurrency(5))}
		},
		"MaxAtOnce(3) and a rate": func() []trimeter.Option {
			return []trimeter.Option{trimeter.MaxAtOnce(3), trimeter.MaxPerSecond(1000)}
		},
		"no limit": func() []trimeter.Option { return nil },
	}
	for name, opts := range paths {
		t.Run(name+", KeepGoing", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), patience) // the watchdog
			defer cancel()
			pushed := make(chan struct{})
			in := func(yield func(int, error) bool) {
				if !yield(0, nil) {
					return
				}
				select { // the push-back has come out: its pause is in force
				case <-pushed:
				case <-ctx.Done():
					return
				}
				yield(1, errUp)
			}
			fn := func(context.Context, int) (int, error) { return 0, trimeter.Pushback(time.Hour, errBusy) }
			var got []error
			for _, err := range trimeter.Then(ctx, in, fn, append(opts(), trimeter.WithClock(newFakeClock()), trimeter.KeepGoing())...) {
				if got = append(got, err); len(got) == 1 {
					close(pushed)
				}
			}
			if len(got) != 2 || !errors.Is(got[0], errBusy) || got[1] != errUp {
				t.Errorf("got %v, want the push-back and then the upstream error, at once", got)
			}
		})
		if name == "MaxAtOnce(1)" {
			continue // the retrying input holds the one slot: nothing more is pulled
		}
		t.Run(name+", fail-fast while a retry waits out the pause", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), patience) // the watchdog
			defer cancel()
			pushedBack := make(chan struct{})
			in := func(yield func(int, error) bool) {
				if !yield(0, nil) {
					return
				}
				select {
				case <-pushedBack:
				case <-ctx.Done():
					return
				}
				yield(1, errUp)
			}
			var once atomic.Bool
			fn := func(context.Context, int) (int, error) {
				if once.CompareAndSwap(false, true) {
					defer close(pushedBack)
				}
				return 0, trimeter.Pushback(time.Hour, errBusy)
			}
			var got []error
			for _, err := range trimeter.Then(ctx, in, fn, append(opts(), trimeter.WithClock(newFakeClock()), trimeter.Retry(2))...) {
				got = append(got, err)
			}
			if len(got) != 1 || got[0] != errUp {
				t.Errorf("got %v, want the upstream error alone, at once", got)
			}
		})
	}
}

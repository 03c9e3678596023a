package trimeter_test

import (
	"context"
	"fmt"
	"runtime"
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

// keyedAcquireOnly gives every key the same meter, which cannot be asked
// without waiting.
type keyedAcquireOnly struct{ acquireOnly }

func (k keyedAcquireOnly) ForKey(string) throttle.Meter { return k.acquireOnly }

// endRun lets the blocked first task return and waits for the run; after
// a failure, when a task may wait for ever, it cancels the run first.
func endRun(t *testing.T, cancel context.CancelFunc, release chan struct{}, done <-chan error) {
	t.Helper()
	close(release)
	if t.Failed() {
		cancel()
	}
	err := <-done
	cancel()
	if err != nil && !t.Failed() {
		t.Fatal(err)
	}
}

// A meter that cannot be asked without waiting (it is not a
// throttle.Trier) holds up no rate token: a task waits in its Acquire
// first and keeps its permit while the rate makes it wait, so that the
// token is spent when the task starts and MaxPerSecond's bound holds on
// start times, whether the meter is the call's or its key's.
func TestAMeterThatBlocksHoldsNoRateToken(t *testing.T) {
	cases := []struct {
		name string
		opt  func(m throttle.Meter) trimeter.Option
	}{
		{"the call's meter", func(m throttle.Meter) trimeter.Option { return trimeter.WithMeter(acquireOnly{m}) }},
		{"a key's meter", func(m throttle.Meter) trimeter.Option {
			return trimeter.PerKey(func(int) int { return 0 }, trimeter.WithMeter(keyedAcquireOnly{acquireOnly{m}}))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := testclock.New()
			sem := throttle.NewConcurrency(3, throttle.WithClock(clk))
			starts := make(chan time.Duration, 3)
			release := make(chan struct{})
			started1 := make(chan struct{})
			fn := func(_ context.Context, i int) error {
				starts <- clk.Elapsed()
				switch i {
				case 0:
					<-release // holds one of the meter's three slots
				case 1:
					close(started1)
				}
				return nil
			}
			ctx, cancel := context.WithCancel(context.Background())
			// The third input comes once the second has started: until
			// then, only the second may wait in the meter.
			inputs := func(yield func(int) bool) {
				if !yield(0) || !yield(1) {
					return
				}
				select {
				case <-started1:
					yield(2)
				case <-ctx.Done():
				}
			}
			done := make(chan error, 1)
			go func() {
				done <- trimeter.RunOnEach(ctx, inputs, fn, trimeter.WithClock(clk),
					trimeter.MaxAtOnce(3), trimeter.MaxPerSecond(1), trimeter.MaxBurst(1), tc.opt(sem))
			}()
			defer endRun(t, cancel, release, done)
			var got []time.Duration
			got = append(got, <-starts)
			clk.WaitFor(t, 1) // the second task waits for its token, due at 1 s
			// Another call takes every slot of the meter that is free,
			// until 5 s.
			var other []throttle.Permit
			for {
				p, _, _ := sem.TryAcquire(context.Background())
				if p == nil {
					break
				}
				other = append(other, p)
			}
			clk.Advance(time.Second)
			// The second task starts, with the meter's slot it kept; had
			// it given that slot back, it would now wait for it, holding
			// its token.
			eventually(t, func() bool { return len(starts) > 0 || sem.Stats().Waiting > 0 }, "the second task's start, or its wait in the meter")
			clk.Advance(4 * time.Second)
			for _, p := range other {
				p.Done(throttle.Outcome{Status: throttle.Succeeded})
			}
			got = append(got, <-starts, <-starts)
			slices.Sort(got)
			for i := 1; i < len(got); i++ {
				if got[i]-got[i-1] < time.Second {
					t.Fatalf("tasks started at %v: two starts within %v, more than MaxPerSecond(1) with MaxBurst(1) lets through", got, got[i]-got[i-1])
				}
			}
			if want := []time.Duration{0, time.Second, 5 * time.Second}; !slices.Equal(got, want) {
				t.Errorf("tasks started at %v, want %v", got, want)
			}
		})
	}
}

// With a meter that cannot be asked without waiting among its meters, a
// task that waits for a meter that answers at once still waits in that
// meter's line: it counts as Waiting, and a raised limit lets it start at
// once.
func TestATaskWaitingBesideAMeterThatBlocksKeepsItsPlace(t *testing.T) {
	clk := testclock.New()
	sem := throttle.NewConcurrency(1, throttle.WithClock(clk))
	mon := throttle.NewMonitor(clk)
	release := make(chan struct{})
	started := make(chan int, 2)
	fn := func(_ context.Context, i int) error {
		started <- i
		if i == 0 {
			<-release
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- trimeter.RunOnEach(ctx, slices.Values([]int{0, 1}), fn, trimeter.WithClock(clk), trimeter.MaxAtOnce(2),
			trimeter.WithMeter(sem), trimeter.WithMeter(acquireOnly{throttle.NewConcurrency(10)}), trimeter.Watch(mon))
	}()
	defer endRun(t, cancel, release, done)
	<-started
	eventually(t, func() bool { return sem.Stats().Waiting == 1 }, "the second task waiting in the meter's line")
	if s := mon.Stats(); s.Waiting != 1 {
		t.Errorf("Watch shows %d waiting, want 1", s.Waiting)
	}
	if err := sem.SetLimit(2); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return len(started) == 1 }, "the second task started after SetLimit(2)")
}

// refuseThenFail refuses every TryAcquire, and panics or calls
// runtime.Goexit in Acquire, where a task waits for it.
type refuseThenFail struct{ goexit bool }

func (m refuseThenFail) Acquire(context.Context) (throttle.Permit, error) {
	if m.goexit {
		runtime.Goexit()
	}
	panic("refuseThenFail")
}

func (refuseThenFail) TryAcquire(context.Context) (throttle.Permit, time.Duration, error) {
	return nil, time.Millisecond, nil
}

// A panic or a Goexit in a meter while a task waits for it gives back the
// permit the task kept from a meter that cannot be asked without waiting:
// a shared meter loses none for good.
func TestAMeterFailingWhileATaskWaitsGivesBackTheKeptPermit(t *testing.T) {
	for _, goexit := range []bool{false, true} {
		t.Run(fmt.Sprintf("goexit=%v", goexit), func(t *testing.T) {
			shared := throttle.NewConcurrency(1)
			ended := callAlone(func() {
				_ = trimeter.RunOnEach(context.Background(), newProbe(1).seq(), func(context.Context, int) error { return nil },
					trimeter.WithMeter(acquireOnly{shared}), trimeter.WithMeter(refuseThenFail{goexit: goexit}))
			})
			if goexit {
				checkGoexitEnding(t, ended)
			} else if ended.panic == nil {
				t.Fatalf("the call ended with %+v, want a panic", ended)
			}
			if s := shared.Stats(); s.InFlight != 0 {
				t.Errorf("the shared meter has %d permits in flight after the run, want 0", s.InFlight)
			}
		})
	}
}

// spendingMeter grants every permit at once and counts the permits given
// back unused: a meter that cannot take a permit back (a rate kept in
// Redis, say) would lose each of them.
type spendingMeter struct{ granted, unused atomic.Int64 }

func (m *spendingMeter) Acquire(ctx context.Context) (throttle.Permit, error) {
	p, _, err := m.TryAcquire(ctx)
	return p, err
}

func (m *spendingMeter) TryAcquire(context.Context) (throttle.Permit, time.Duration, error) {
	m.granted.Add(1)
	return spendingPermit{m}, 0, nil
}

type spendingPermit struct{ m *spendingMeter }

func (p spendingPermit) Done(o throttle.Outcome) {
	if o.Status == throttle.Unused {
		p.m.unused.Add(1)
	}
}

// otherRate is a throttle.Rate that the scheduler does not know for one:
// it is asked as any other shared meter that answers at once.
type otherRate struct{ r *throttle.Rate }

func (o otherRate) Acquire(ctx context.Context) (throttle.Permit, error) { return o.r.Acquire(ctx) }

func (o otherRate) TryAcquire(ctx context.Context) (throttle.Permit, time.Duration, error) {
	return o.r.TryAcquire(ctx)
}

// An attempt asks the meters that take back an unused permit exactly (the
// scheduler's own rates, then the meters of package throttle) before the
// others, and a key's before the call's: so a meter that may lose a permit
// given back unused (a rate kept in Redis, here spendingMeter) is asked
// only once the others have granted theirs, and its permits are all used.
// Five inputs of one key, each key's meter or rate letting one start a
// second.
func TestMetersThatMayLoseAnUnusedPermitAreAskedLast(t *testing.T) {
	cases := map[string]func(clk clockwork.Clock, spend *spendingMeter) []trimeter.Option{
		"the call's, after the key's rate of package throttle": func(clk clockwork.Clock, spend *spendingMeter) []trimeter.Option {
			return []trimeter.Option{trimeter.WithMeter(spend), trimeter.PerKey(oneKey,
				trimeter.WithMeter(&keyedMeters{newMeter: func() throttle.Meter { return throttle.NewRate(1, 1, throttle.WithClock(clk)) }}))}
		},
		"the call's, after the key's other rate": func(clk clockwork.Clock, spend *spendingMeter) []trimeter.Option {
			return []trimeter.Option{trimeter.WithMeter(spend), trimeter.PerKey(oneKey,
				trimeter.WithMeter(&keyedMeters{newMeter: func() throttle.Meter { return otherRate{throttle.NewRate(1, 1, throttle.WithClock(clk))} }}))}
		},
		"the call's, after the key's MaxPerSecond": func(_ clockwork.Clock, spend *spendingMeter) []trimeter.Option {
			return []trimeter.Option{trimeter.WithMeter(spend), trimeter.PerKey(oneKey, trimeter.MaxPerSecond(1))}
		},
		"the key's, after the call's MaxPerSecond": func(_ clockwork.Clock, spend *spendingMeter) []trimeter.Option {
			return []trimeter.Option{trimeter.MaxPerSecond(1), trimeter.MaxBurst(1),
				trimeter.PerKey(oneKey, trimeter.WithMeter(&keyedMeters{newMeter: func() throttle.Meter { return spend }}))}
		},
		"the key's, after the call's rate of package throttle": func(clk clockwork.Clock, spend *spendingMeter) []trimeter.Option {
			return []trimeter.Option{trimeter.WithMeter(throttle.NewRate(1, 1, throttle.WithClock(clk))),
				trimeter.PerKey(oneKey, trimeter.WithMeter(&keyedMeters{newMeter: func() throttle.Meter { return spend }}))}
		},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			clk := newFakeClock()
			defer drive(clk, 100*time.Millisecond)()
			spend := &spendingMeter{}
			err := trimeter.RunOnEach(context.Background(), newProbe(5).seq(), func(context.Context, int) error { return nil },
				append(opts(clk, spend), trimeter.MaxAtOnce(2), trimeter.WithClock(clk))...)
			if err != nil {
				t.Fatal(err)
			}
			if g, u := spend.granted.Load(), spend.unused.Load(); g != 5 || u != 0 {
				t.Errorf("the meter granted %d permits, %d of them given back unused; want 5 and none", g, u)
			}
		})
	}
}

func oneKey(int) string { return "one key" }

// nilPermitMeter breaks the Meter contract: its Acquire returns neither a
// permit nor an error. As a Trier it refuses every TryAcquire, so that the
// run waits in its Acquire.
type nilPermitMeter struct{ acquires atomic.Int64 }

func (m *nilPermitMeter) Acquire(context.Context) (throttle.Permit, error) {
	m.acquires.Add(1)
	return nil, nil
}

type nilPermitTrier struct{ *nilPermitMeter }

func (nilPermitTrier) TryAcquire(context.Context) (throttle.Permit, time.Duration, error) {
	return nil, 0, nil
}

// A meter whose Acquire returns a nil permit and no error gave the
// attempt no permit: the attempt does not run, and the run raises it as
// its panic, naming the meter, once the other meters' permits are given
// back.
func TestAMeterReturningANilPermitIsTheRunsPanic(t *testing.T) {
	for _, trier := range []bool{false, true} {
		t.Run(fmt.Sprintf("trier=%v", trier), func(t *testing.T) {
			npm := &nilPermitMeter{}
			var m throttle.Meter = npm
			if trier {
				m = nilPermitTrier{npm}
			}
			shared := throttle.NewConcurrency(1)
			var calls atomic.Int64
			v := catch(func() {
				_ = trimeter.RunOnEach(context.Background(), newProbe(2).seq(), func(context.Context, int) error {
					calls.Add(1)
					return nil
				}, trimeter.MaxAtOnce(2), trimeter.WithMeter(shared), trimeter.WithMeter(m))
			})
			pe, ok := v.(*trimeter.PanicError)
			if !ok {
				t.Fatalf("the call ended with %v, want a *PanicError", v)
			}
			err, _ := pe.Value.(error)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%T.Acquire returned a nil permit", m)) {
				t.Errorf("PanicError.Value = %v, want an error naming %T and the nil permit", pe.Value, m)
			}
			if n := calls.Load(); n != 0 {
				t.Errorf("fn ran %d times without the meter's permit, want 0", n)
			}
			if n := npm.acquires.Load(); n != 1 {
				t.Errorf("Acquire was called %d times, want 1", n)
			}
			if s := shared.Stats(); s.InFlight != 0 {
				t.Errorf("the shared meter has %d permits in flight after the run, want 0", s.InFlight)
			}
		})
	}
}

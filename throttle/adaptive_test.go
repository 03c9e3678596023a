package throttle_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/internal/testclock"
	"github.com/trimeter-go/trimeter/throttle"
)

// closedLoop keeps an Adaptive meter full, as a closed loop of callers
// would: it takes every permit the meter gives, then ends the oldest with
// outcome, n times. It returns the permits still held.
type closedLoop struct {
	t     *testing.T
	clock *testclock.Clock
	a     *throttle.Adaptive
	held  []throttle.Permit
}

func (l *closedLoop) fill() {
	for {
		p, _, err := l.a.TryAcquire(context.Background())
		if err != nil {
			l.t.Fatal(err)
		}
		if p == nil {
			return
		}
		l.held = append(l.held, p)
	}
}

func (l *closedLoop) run(n int, o throttle.Outcome) {
	for range n {
		l.fill()
		l.held[0].Done(o)
		l.held = l.held[1:]
	}
	l.fill()
}

// endAll ends every held permit with o, taking no new ones.
func (l *closedLoop) endAll(o throttle.Outcome) {
	for _, p := range l.held {
		p.Done(o)
	}
	l.held = nil
}

func (l *closedLoop) limit() int64 { return l.a.Stats().Limit }

func ok(latency time.Duration) throttle.Outcome {
	return throttle.Outcome{Status: throttle.Succeeded, Latency: latency}
}

func newLoop(t *testing.T, min, max int) *closedLoop {
	clock := testclock.New()
	return &closedLoop{t: t, clock: clock, a: throttle.NewAdaptive(min, max, throttle.WithClock(clock))}
}

func TestAdaptiveStartsAtMin(t *testing.T) {
	a := throttle.NewAdaptive(3, 50)
	if got := a.Stats().Limit; got != 3 {
		t.Fatalf("Limit = %d, want 3", got)
	}
	done(holdAll(t, a, 3)...)
}

func TestAdaptiveGrowsByOnePerAttemptUntilAQueueShows(t *testing.T) {
	l := newLoop(t, 1, 1000)
	l.run(20, ok(10*time.Millisecond))
	if got := l.limit(); got != 21 {
		t.Fatalf("after 20 attempts at the best latency, Limit = %d; want 21", got)
	}
	if n := len(l.held); n != 21 {
		t.Fatalf("%d permits held under a limit of 21", n)
	}
}

func TestAdaptiveShrinksWhenLatencyShowsAQueue(t *testing.T) {
	l := newLoop(t, 1, 1000)
	l.run(31, ok(10*time.Millisecond)) // limit 32
	// Twice the best latency: half the attempts wait in a queue. The
	// limit shrinks by about one per round trip (32 attempts).
	l.run(64, ok(20*time.Millisecond))
	queued := l.limit()
	if queued >= 32 || queued < 29 {
		t.Fatalf("after two round trips with a queue of 16, Limit = %d; want 29 to 31", queued)
	}
	// Back at the best latency, out of slow start: about one more per
	// round trip, once the smoothed latency has come down.
	l.run(300, ok(10*time.Millisecond))
	if got := l.limit(); got < queued+4 || got > queued+12 {
		t.Fatalf("after 300 attempts without a queue, Limit = %d; want %d to %d", got, queued+4, queued+12)
	}
	// A small queue, between the thresholds: the limit holds.
	l.run(50, ok(11500*time.Microsecond))
	before := l.limit()
	l.run(300, ok(11500*time.Microsecond))
	if got := l.limit(); got != before {
		t.Fatalf("with a queue of about 5, Limit moved from %d to %d", before, got)
	}
}

func TestAdaptivePushbackHalvesOncePerRoundTrip(t *testing.T) {
	l := newLoop(t, 1, 1000)
	l.run(31, ok(10*time.Millisecond)) // limit 32, 32 held
	l.endAll(throttle.Outcome{Status: throttle.PushedBack, Pause: time.Second})
	if got := l.limit(); got != 16 {
		t.Fatalf("after 32 push-backs admitted together, Limit = %d; want 16", got)
	}
	if paused := l.a.Stats().PausedUntil; !paused.Equal(testclock.Start.Add(time.Second)) {
		t.Fatalf("PausedUntil = %v; want the push-back's pause", paused)
	}
	l.clock.Advance(time.Second)
	l.fill()
	l.endAll(throttle.Outcome{Status: throttle.PushedBack})
	if got := l.limit(); got != 8 {
		t.Fatalf("after push-backs admitted after the cut, Limit = %d; want 8", got)
	}
}

func TestAdaptiveFailureCutsATenth(t *testing.T) {
	l := newLoop(t, 1, 1000)
	l.run(39, ok(10*time.Millisecond)) // limit 40
	l.endAll(throttle.Outcome{Status: throttle.Failed, Latency: time.Millisecond})
	if got := l.limit(); got != 36 {
		t.Fatalf("after 40 failures admitted together, Limit = %d; want 36", got)
	}
}

// A failure shows no queue: after its tenth off, the limit still grows by
// one per attempt, as at first; after a push-back it grows by one per
// round trip.
func TestAdaptiveFailureDoesNotEndSlowStart(t *testing.T) {
	l := newLoop(t, 1, 1000)
	l.run(39, ok(10*time.Millisecond)) // limit 40
	l.endAll(throttle.Outcome{Status: throttle.Failed, Latency: 10 * time.Millisecond})
	l.run(20, ok(10*time.Millisecond)) // from 36
	if got := l.limit(); got != 56 {
		t.Fatalf("20 attempts without a queue after a failure's cut took the limit to %d; want 56, one more per attempt", got)
	}

	l = newLoop(t, 1, 1000)
	l.run(39, ok(10*time.Millisecond))
	l.endAll(throttle.Outcome{Status: throttle.PushedBack})
	l.run(20, ok(10*time.Millisecond)) // from 20: a round trip
	if got := l.limit(); got < 20 || got > 22 {
		t.Fatalf("20 attempts without a queue after a push-back's cut took the limit to %d; want 20 to 22, about one more per round trip", got)
	}
}

func TestAdaptiveLearnsNothingFromCancelledOrUnused(t *testing.T) {
	l := newLoop(t, 1, 1000)
	l.run(9, ok(10*time.Millisecond)) // limit 10
	l.run(50, throttle.Outcome{Status: throttle.Canceled, Latency: time.Microsecond})
	l.run(50, throttle.Outcome{Status: throttle.Unused})
	if got := l.limit(); got != 10 {
		t.Fatalf("Limit = %d after cancelled and unused attempts; want 10", got)
	}
	// Had the cancelled attempts' 1µs become the best latency, 10ms would
	// look like a long queue and shrink the limit.
	l.run(1, ok(10*time.Millisecond))
	if got := l.limit(); got != 11 {
		t.Fatalf("Limit = %d; want 11", got)
	}
}

func TestAdaptiveLearnsNothingFromASuccessWithoutLatency(t *testing.T) {
	l := newLoop(t, 1, 1000)
	l.run(50, ok(0))
	l.run(50, ok(-time.Millisecond))
	if got := l.limit(); got != 1 {
		t.Fatalf("Limit = %d after successes with no latency; want 1, the minimum", got)
	}
	l.run(1, ok(10*time.Millisecond)) // the first latency it sees
	if got := l.limit(); got != 2 {
		t.Fatalf("Limit = %d after one success with a latency; want 2", got)
	}
	l.endAll(ok(10 * time.Millisecond))
}

func TestAdaptiveDoesNotGrowWhenLittleIsInFlight(t *testing.T) {
	a := throttle.NewAdaptive(10, 100)
	for range 50 {
		p, _ := a.Acquire(context.Background())
		p.Done(ok(10 * time.Millisecond))
	}
	if got := a.Stats().Limit; got != 10 {
		t.Fatalf("Limit = %d after attempts one at a time; want 10", got)
	}
}

func TestAdaptiveStaysWithinMinAndMax(t *testing.T) {
	l := newLoop(t, 2, 6)
	l.run(50, ok(10*time.Millisecond))
	if got := l.limit(); got != 6 {
		t.Fatalf("Limit = %d; want the max, 6", got)
	}
	for range 5 {
		l.endAll(throttle.Outcome{Status: throttle.PushedBack})
		l.fill()
	}
	if got := l.limit(); got != 2 {
		t.Fatalf("Limit = %d; want the min, 2", got)
	}
	l.endAll(ok(10 * time.Millisecond))
}

// Limits too large for a float64 to hold exactly still bound the limit in
// force, and the meter goes on admitting ("no limit" written as
// NewAdaptive(math.MaxInt, math.MaxInt) once turned negative and admitted
// nothing more).
func TestAdaptiveLimitsNearMaxInt(t *testing.T) {
	cases := []struct{ min, max int }{
		{math.MaxInt, math.MaxInt},
		{math.MaxInt - 100, math.MaxInt},
		{min(1<<53+1, math.MaxInt), min(1<<53+1, math.MaxInt)}, // MaxInt where int has 32 bits
		{1, math.MaxInt},
	}
	for _, c := range cases {
		a := throttle.NewAdaptive(c.min, c.max, throttle.WithClock(testclock.New()))
		for i := range 3 {
			p, _, err := a.TryAcquire(context.Background())
			if err != nil || p == nil {
				t.Fatalf("NewAdaptive(%d, %d): attempt %d: permit %v, error %v; want a permit", c.min, c.max, i, p, err)
			}
			p.Done(ok(time.Millisecond))
			if got := a.Stats().Limit; got < int64(c.min) || got > int64(c.max) {
				t.Fatalf("NewAdaptive(%d, %d): Limit = %d after %d attempts; want it within min and max", c.min, c.max, got, i+1)
			}
		}
	}
}

func TestAdaptiveMeasuresBaseAfreshAfterAPushback(t *testing.T) {
	l := newLoop(t, 1, 1000)
	l.run(15, ok(10*time.Millisecond))                      // limit 16
	l.endAll(throttle.Outcome{Status: throttle.PushedBack}) // limit 8
	// The service is now twice as slow for good; without a fresh base
	// every attempt would look queued and the limit would shrink.
	l.run(40, ok(20*time.Millisecond))
	if got := l.limit(); got < 8 {
		t.Fatalf("Limit = %d: the old best latency was kept", got)
	}
}

func TestAdaptiveNeverExceedsItsLimit(t *testing.T) {
	a := throttle.NewAdaptive(2, 6)
	if peak := hammer(t, a, 16, 200); peak > 6 {
		t.Fatalf("%d attempts ran at once under a max of 6", peak)
	}
	if s := a.Stats(); s.InFlight != 0 || s.Limit < 2 || s.Limit > 6 {
		t.Fatalf("Stats after the run: %+v", s)
	}
}

func TestAdaptiveBadValues(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		a    *throttle.Adaptive
		want string
	}{
		{throttle.NewAdaptive(0, 5), "NewAdaptive(0, 5)"},
		{throttle.NewAdaptive(5, 4), "NewAdaptive(5, 4)"},
		{throttle.NewAdaptive(1, 2, nil), "option 0 is nil"},
	}
	for _, tc := range cases {
		checkBad(t, tc.a.Err(), tc.want)
		p, err := tc.a.Acquire(ctx)
		checkBad(t, err, tc.want)
		if p != nil {
			t.Fatal("Acquire gave a permit")
		}
		_, _, err = tc.a.TryAcquire(ctx)
		checkBad(t, err, tc.want)
	}
	if !errors.Is(throttle.NewAdaptive(1, 1).Err(), nil) {
		t.Fatal("NewAdaptive(1, 1) is a good value")
	}
}

// A push-back that cuts nothing (its attempt was admitted before the last
// push-back's cut) measures no base afresh: only a cut does. Here a
// push-back cuts, the attempts admitted after it measure the base afresh,
// the late push-back does not cut, and then the service queues: the limit
// must shrink as it does when the late outcome is a failure, which cuts
// nothing either.
func TestAdaptiveLatePushbackKeepsTheBase(t *testing.T) {
	limits := map[throttle.Status]int64{}
	for _, second := range []throttle.Status{throttle.Failed, throttle.PushedBack} {
		l := newLoop(t, 1, 1000)
		l.run(31, ok(10*time.Millisecond))                            // limit 32, every attempt admitted before any cut
		l.held[0].Done(throttle.Outcome{Status: throttle.PushedBack}) // the cut
		late := l.held[1]                                             // admitted before it
		l.held = l.held[2:]
		l.run(60, ok(10*time.Millisecond)) // the base afresh, from attempts admitted after the cut
		late.Done(throttle.Outcome{Status: second})
		l.run(300, ok(20*time.Millisecond)) // twice the best latency: a queue
		limits[second] = l.limit()
		l.endAll(throttle.Outcome{Status: throttle.Canceled})
	}
	if limits[throttle.PushedBack] != limits[throttle.Failed] {
		t.Errorf("limit %d after a late push-back, %d after a late failure: the push-back took the queue's latency as the best",
			limits[throttle.PushedBack], limits[throttle.Failed])
	}
}

// A round trip whose attempts all run together and end together doubles
// the limit at first: each ran beside the whole batch, though the first to
// end leaves fewer than half in flight behind it.
func TestAdaptiveDoublesPerRoundTripAtFirst(t *testing.T) {
	a := throttle.NewAdaptive(1, 1000, throttle.WithClock(testclock.New()))
	var limits []int64
	for range 6 {
		limits = append(limits, a.Stats().Limit)
		var batch []throttle.Permit
		for {
			p, _, err := a.TryAcquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if p == nil {
				break
			}
			batch = append(batch, p)
		}
		for _, p := range batch {
			p.Done(throttle.Outcome{Status: throttle.Succeeded, Latency: 10 * time.Millisecond})
		}
	}
	want := []int64{1, 2, 4, 8, 16, 32}
	for i := range want {
		if limits[i] != want[i] {
			t.Fatalf("limit at each round trip: %v, want %v", limits, want)
		}
	}
}

// A failure of one attempt of a round trip takes a tenth off; the
// push-backs of the other attempts of that round trip still halve the
// limit, once.
func TestAdaptivePushbackHalvesAfterAFailureOfItsRoundTrip(t *testing.T) {
	l := newLoop(t, 1, 1000)
	l.run(39, ok(10*time.Millisecond)) // limit 40, 40 held
	if got := l.limit(); got != 40 {
		t.Fatalf("Limit = %d, want 40", got)
	}
	l.held[0].Done(throttle.Outcome{Status: throttle.Failed, Latency: 10 * time.Millisecond})
	l.held = l.held[1:]
	if got := l.limit(); got != 36 {
		t.Fatalf("after a failure, Limit = %d, want 36", got)
	}
	l.endAll(throttle.Outcome{Status: throttle.PushedBack})
	if got := l.limit(); got != 18 {
		t.Fatalf("after 39 push-backs, Limit = %d, want 36 halved once: 18", got)
	}
}

// Push-backs end slow start also when a failure of their round trip came
// first.
func TestAdaptivePushbacksEndSlowStartAfterAFailure(t *testing.T) {
	l := newLoop(t, 1, 1000)
	l.run(39, ok(10*time.Millisecond)) // limit 40, 40 held
	l.held[0].Done(throttle.Outcome{Status: throttle.Failed, Latency: 10 * time.Millisecond})
	l.held = l.held[1:]
	l.endAll(throttle.Outcome{Status: throttle.PushedBack}) // the other 39
	before := l.limit()
	l.run(20, ok(10*time.Millisecond))
	if got := l.limit(); got >= before+20 {
		t.Fatalf("after the push-backs the limit still grows by one per attempt: %d, then %d after 20 attempts", before, got)
	}
}

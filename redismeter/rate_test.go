package redismeter

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/trimeter-go/trimeter/throttle"
)

var ctx = context.Background()

// Interface checks.
var (
	_ throttle.Trier   = (*Rate)(nil)
	_ throttle.Keyed   = (*Rate)(nil)
	_ throttle.Checker = (*Rate)(nil)
	_ throttle.Watcher = (*Rate)(nil)
	_ throttle.Trier   = (*Concurrency)(nil)
	_ throttle.Keyed   = (*Concurrency)(nil)
	_ throttle.Checker = (*Concurrency)(nil)
	_ throttle.Watcher = (*Concurrency)(nil)
)

func TestRateBadValuesAreReportedNotPanicked(t *testing.T) {
	client := newClient("127.0.0.1:1") // never dialled
	defer client.Close()
	for _, tc := range []struct {
		name string
		m    *Rate
		want string
	}{
		{"nil client", NewRate(nil, "k", 1, 1), "client is nil"},
		{"empty key", NewRate(client, "", 1, 1), "key is empty"},
		{"zero rate", NewRate(client, "k", 0, 1), "perSecond 0"},
		{"negative rate", NewRate(client, "k", -2, 1), "perSecond -2"},
		{"NaN rate", NewRate(client, "k", math.NaN(), 1), "perSecond NaN"},
		{"infinite rate", NewRate(client, "k", math.Inf(1), 1), "perSecond +Inf"},
		{"tiny rate", NewRate(client, "k", 1e-12, 1), "perSecond 1e-12"},
		{"zero burst", NewRate(client, "k", 1, 0), "burst 0"},
		{"nil option", NewRate(client, "k", 1, 1, nil), "option 0 is nil"},
		{"share above 1", NewRate(client, "k", 1, 1, FallbackShare(1.5)), "FallbackShare(1.5)"},
		{"zero share", NewRate(client, "k", 1, 1, FallbackShare(0)), "FallbackShare(0)"},
		{"zero timeout", NewRate(client, "k", 1, 1, CallTimeout(0)), "CallTimeout(0s)"},
		{"nil clock", NewRate(client, "k", 1, 1, WithClock(nil)), "WithClock(nil)"},
		{"nil pointer clock", NewRate(client, "k", 1, 1, WithClock((*clockwork.FakeClock)(nil))), "WithClock(nil)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkBad(t, tc.m, tc.want)
		})
	}
}

// checkBad checks that m reports a bad value naming want, from Err, from
// Acquire and from TryAcquire.
func checkBad(t *testing.T, m interface {
	throttle.Trier
	throttle.Checker
}, want string) {
	t.Helper()
	err := m.Err()
	if !errors.Is(err, throttle.ErrBadValue) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Err() = %v, want a bad value naming %q", err, want)
	}
	if p, aerr := m.Acquire(ctx); p != nil || aerr != err {
		t.Errorf("Acquire = %v, %v; want nil, %v", p, aerr, err)
	}
	if p, _, terr := m.TryAcquire(ctx); p != nil || terr != err {
		t.Errorf("TryAcquire = %v, %v; want nil, %v", p, terr, err)
	}
}

func TestRateGrantsTheBurstThenWaitsAnInterval(t *testing.T) {
	srv := startRedis(t)
	// One a second: the four calls have a second before a token refills.
	m := NewRate(srv.client(t), "burst", 1, 3)
	for i := range 3 {
		if p, _, err := m.TryAcquire(ctx); p == nil || err != nil {
			t.Fatalf("token %d of the burst: %v, %v", i, p, err)
		}
	}
	p, wait, err := m.TryAcquire(ctx)
	if p != nil || err != nil || wait <= 0 || wait > time.Second {
		t.Fatalf("TryAcquire past the burst = %v, %v, %v; want a wait of at most 1s", p, wait, err)
	}
	if s := m.Stats(); s.Started != 3 || s.InFlight != 3 {
		t.Errorf("Stats = %+v, want 3 started and in flight", s)
	}
}

func TestRateKeepsFractionalRates(t *testing.T) {
	srv := startRedis(t)
	m := NewRate(srv.client(t), "slow", 0.5, 1)
	if p, _, err := m.TryAcquire(ctx); p == nil || err != nil {
		t.Fatalf("first token: %v, %v", p, err)
	}
	// The wait is 2s less the time between the two calls: over a second
	// at 0.5/s, where a rate of 1/s (a rate rounded to a whole one, say)
	// would leave less.
	_, wait, err := m.TryAcquire(ctx)
	if err != nil || wait <= time.Second || wait > 2*time.Second {
		t.Fatalf("wait after one token at 0.5/s = %v, %v; want between 1s and 2s", wait, err)
	}
}

// TestRateUnusedPermitKeepsItsToken: the bucket in Redis cannot give a
// token back safely, so an unused permit's token stays spent.
func TestRateUnusedPermitKeepsItsToken(t *testing.T) {
	srv := startRedis(t)
	m := NewRate(srv.client(t), "unused", 1, 1)
	p, _, err := m.TryAcquire(ctx)
	if p == nil || err != nil {
		t.Fatalf("first token: %v, %v", p, err)
	}
	p.Done(throttle.Outcome{Status: throttle.Unused})
	if p, wait, err := m.TryAcquire(ctx); p != nil || err != nil || wait <= 0 {
		t.Fatalf("TryAcquire after an unused permit = %v, %v, %v; want a wait", p, wait, err)
	}
	if s := m.Stats(); s.InFlight != 0 {
		t.Errorf("Stats().InFlight = %d after Done, want 0", s.InFlight)
	}
}

func TestRatePauseHoldsOffOtherProcesses(t *testing.T) {
	srv := startRedis(t)
	pauser := NewRate(srv.client(t), "paused", 100, 5)
	other := NewRate(srv.client(t), "paused", 100, 5) // another client: another process
	p, _, err := pauser.TryAcquire(ctx)
	if p == nil || err != nil {
		t.Fatalf("first token: %v, %v", p, err)
	}
	p.Done(throttle.Outcome{Status: throttle.PushedBack, Pause: 2 * time.Second})
	p, wait, err := other.TryAcquire(ctx)
	if p != nil || err != nil || wait < time.Second || wait > 2*time.Second {
		t.Fatalf("TryAcquire during another's pause = %v, %v, %v; want a wait of about 2s", p, wait, err)
	}
	if until := other.Stats().PausedUntil; until.IsZero() {
		t.Error("Stats().PausedUntil is zero during a pause")
	}
	// A shorter pause does not shorten it.
	p, _, err = NewRate(srv.client(t), "paused", 100, 5).TryAcquire(ctx)
	if p != nil || err != nil {
		t.Fatalf("TryAcquire of a fresh meter during the pause = %v, %v; want none", p, err)
	}
	pttl := srv.client(t).PTTL(ctx, "rate:{paused}:pause").Val()
	pauser.pause(10 * time.Millisecond)
	if after := srv.client(t).PTTL(ctx, "rate:{paused}:pause").Val(); after < pttl-500*time.Millisecond {
		t.Errorf("a 10ms pause cut the pause in force from %v to %v", pttl, after)
	}
}

func TestRateForKeyGivesEachKeyItsBucket(t *testing.T) {
	srv := startRedis(t)
	m := NewRate(srv.client(t), "host", 1, 1)
	a, b := m.ForKey("a"), m.ForKey("b")
	if p, _, err := a.(throttle.Trier).TryAcquire(ctx); p == nil || err != nil {
		t.Fatalf("key a: %v, %v", p, err)
	}
	if p, _, err := a.(throttle.Trier).TryAcquire(ctx); p != nil || err != nil {
		t.Fatalf("key a again: %v, %v; want a wait", p, err)
	}
	if p, _, err := b.(throttle.Trier).TryAcquire(ctx); p == nil || err != nil {
		t.Fatalf("key b: %v, %v", p, err)
	}
	if n := srv.client(t).Exists(ctx, "rate:{host:a}", "rate:{host:b}").Val(); n != 2 {
		t.Errorf("%d of the buckets rate:{host:a} and rate:{host:b} exist, want both", n)
	}
	if s := m.Stats(); s.Started != 2 {
		t.Errorf("Stats().Started = %d, want the keys' 2", s.Started)
	}
}

func TestRateWaitEndsAtOnceOnCancel(t *testing.T) {
	srv := startRedis(t)
	clock := clockwork.NewFakeClock()
	m := NewRate(srv.client(t), "cancel", 0.01, 1, WithClock(clock))
	if p, _, err := m.TryAcquire(ctx); p == nil || err != nil {
		t.Fatalf("first token: %v, %v", p, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() {
		_, err := m.Acquire(cctx)
		done <- err
	}()
	if err := clock.BlockUntilContext(ctx, 1); err != nil { // Acquire sleeps on the clock
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire after cancel = %v, want context.Canceled", err)
	}
}

// A meter whose clock reads a time before 1970 asks Redis as any other
// does: its gate, which no answer has closed yet, is open.
func TestRateOnAClockBefore1970(t *testing.T) {
	srv := startRedis(t)
	clock := clockwork.NewFakeClockAt(time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, m := range []interface {
		TryAcquire(context.Context) (throttle.Permit, time.Duration, error)
	}{
		NewRate(srv.client(t), "old-rate", 100, 1, WithClock(clock)),
		NewConcurrency(srv.client(t), "old-slots", 1, time.Second, WithClock(clock)),
	} {
		p, wait, err := m.TryAcquire(ctx)
		if p == nil || err != nil {
			t.Fatalf("%T: TryAcquire = %v, %v, %v; want a permit", m, p, wait, err)
		}
		p.Done(throttle.Outcome{Status: throttle.Succeeded})
	}
}

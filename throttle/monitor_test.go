package throttle_test

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/trimeter-go/trimeter/internal/testclock"
	"github.com/trimeter-go/trimeter/throttle"
)

// A monitor shared by several calls or meters shows the longest pause in
// force: a shorter one recorded later does not shorten it.
func TestMonitorKeepsTheLongestPause(t *testing.T) {
	clock := testclock.New()
	m := throttle.NewMonitor(clock)
	long, short := clock.Now().Add(10*time.Second), clock.Now().Add(time.Second)
	m.SetPause(long)
	m.SetPause(short)
	if got := m.Stats().PausedUntil; !got.Equal(long) {
		t.Errorf("PausedUntil = %v, want the longer pause's end %v", got, long)
	}
	clock.Advance(10 * time.Second)
	if got := m.Stats().PausedUntil; !got.IsZero() {
		t.Errorf("PausedUntil = %v once the pause is over, want none", got)
	}
	m.SetPause(clock.Now().Add(time.Second))
	m.SetPause(time.Time{})
	if got := m.Stats().PausedUntil; !got.IsZero() {
		t.Errorf("PausedUntil = %v after the zero time, want none", got)
	}
}

// EndPause drops the pause its caller recorded, and leaves a longer one
// recorded since.
func TestMonitorEndPauseDropsOnlyItsOwnPause(t *testing.T) {
	clock := testclock.New()
	m := throttle.NewMonitor(clock)
	mine, longer := clock.Now().Add(time.Second), clock.Now().Add(time.Minute)
	m.SetPause(mine)
	m.SetPause(longer)
	m.EndPause(mine)
	if got := m.Stats().PausedUntil; !got.Equal(longer) {
		t.Errorf("PausedUntil = %v, want the longer pause's end %v", got, longer)
	}
	m.EndPause(longer)
	if got := m.Stats().PausedUntil; !got.IsZero() {
		t.Errorf("PausedUntil = %v after EndPause of the pause recorded, want none", got)
	}
	m.EndPause(time.Time{}) // no pause: nothing to do
}

// The rate counts from the first start wherever the clock stands, the
// Unix epoch (0 ns) included.
func TestMonitorRateCountsFromAFirstStartAtTheEpoch(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Unix(0, 0))
	m := throttle.NewMonitor(clock)
	m.Start(false)
	clock.Advance(time.Second)
	m.Start(false)
	clock.Advance(time.Second)
	if got := m.Stats().Rate; got != 1 {
		t.Errorf("Rate = %v, want 1 (2 starts in 2 s)", got)
	}
}

// On a clock set before 1970, a fresh monitor shows no pause, and a pause
// in force shows its end.
func TestMonitorPauseOnAClockBefore1970(t *testing.T) {
	for _, at := range []time.Time{{}, time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)} {
		clock := clockwork.NewFakeClockAt(at)
		m := throttle.NewMonitor(clock)
		if got := m.Stats().PausedUntil; !got.IsZero() {
			t.Errorf("clock at %v: a fresh monitor's PausedUntil = %v, want the zero time", at, got)
		}
		c := throttle.NewConcurrency(1, throttle.WithClock(clock))
		p, err := c.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		p.Done(throttle.Outcome{Status: throttle.PushedBack, Pause: time.Hour})
		if want, got := clock.Now().Add(time.Hour), c.Stats().PausedUntil; !got.Equal(want) {
			t.Errorf("clock at %v: PausedUntil = %v during an hour's pause, want %v", at, got, want)
		}
	}
}

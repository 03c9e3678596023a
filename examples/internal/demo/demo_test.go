package demo

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMaxInWindow(t *testing.T) {
	at := func(ms ...int) []time.Time {
		base := time.Now()
		ts := make([]time.Time, len(ms))
		for i, m := range ms {
			ts[i] = base.Add(time.Duration(m) * time.Millisecond)
		}
		return ts
	}
	tests := []struct {
		name string
		ts   []time.Time
		want int
	}{
		{"no times", nil, 0},
		{"one time", at(5), 1},
		{"a window is half open", at(0, 1000), 1},
		{"times just inside one window", at(0, 999), 2},
		{"the busiest window wins", at(0, 100, 1500, 1600, 1700, 2400), 4},
		{"unsorted times", at(1700, 0, 1500, 2400, 100, 1600), 4},
		{"equal times", at(3, 3, 3), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaxInWindow(tt.ts, time.Second); got != tt.want {
				t.Errorf("MaxInWindow = %d, want %d", got, tt.want)
			}
		})
	}
	// A window of no length holds nothing.
	for _, w := range []time.Duration{0, -time.Second} {
		if got := MaxInWindow(at(0, 1, 1), w); got != 0 {
			t.Errorf("MaxInWindow(ts, %v) = %d, want 0", w, got)
		}
	}
}

func TestTallyCountsInFlightAndWindow(t *testing.T) {
	var tl Tally
	base := time.Now()
	steps := []struct {
		ms               int
		leave            bool
		inFlight, window int
	}{
		{ms: 0, inFlight: 1, window: 1},
		{ms: 400, inFlight: 2, window: 2},
		{ms: 900, leave: true, inFlight: 3, window: 3},
		{ms: 1300, inFlight: 3, window: 3}, // the arrival at 0 is out of the window
		{ms: 1400, inFlight: 4, window: 3},
	}
	for _, s := range steps {
		in, win := tl.Arrive(base.Add(time.Duration(s.ms)*time.Millisecond), time.Second)
		if in != s.inFlight || win != s.window {
			t.Fatalf("Arrive at %d ms = (%d, %d), want (%d, %d)", s.ms, in, win, s.inFlight, s.window)
		}
		if s.leave {
			tl.Leave()
		}
	}
	if tl.Peak() != 4 || tl.Requests() != 5 || tl.MaxInWindow(time.Second) != 3 {
		t.Errorf("peak %d, requests %d, max in window %d; want 4, 5, 3", tl.Peak(), tl.Requests(), tl.MaxInWindow(time.Second))
	}
}

// Arrivals recorded out of order (a server reads the time before it
// takes the tally's lock) are counted in the windows they fall in.
func TestTallyCountsArrivalsRecordedOutOfOrder(t *testing.T) {
	var tl Tally
	base := time.Now()
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	tl.Arrive(at(1000), time.Second)
	if _, win := tl.Arrive(at(0), time.Second); win != 1 {
		t.Errorf("an arrival at 0 ms, recorded after one at 1000 ms: %d in the second that ends at it, want 1", win)
	}
	if _, win := tl.Arrive(at(1500), time.Second); win != 2 {
		t.Errorf("%d arrivals in the second that ends at 1500 ms, want 2 (at 1000 and 1500 ms)", win)
	}
	if _, win := tl.Arrive(at(900), time.Second); win != 2 {
		t.Errorf("%d arrivals in the second that ends at 900 ms, want 2 (at 0 and 900 ms)", win)
	}
}

func TestConsoleKeepsStatusBelowOutput(t *testing.T) {
	var b strings.Builder
	c := NewConsole(&b, true)
	c.Status("1 done")
	c.Println("page a")
	c.Status("2 done")
	want := "1 done\r\033[Kpage a\n1 done\r\033[K2 done"
	if b.String() != want {
		t.Errorf("live console wrote %q, want %q", b.String(), want)
	}
}

func TestConsoleWritesPlainLinesWhenNotLive(t *testing.T) {
	var b strings.Builder
	c := NewConsole(&b, false)
	stop := c.Follow(time.Hour, func() string { return "3 done" })
	c.Println("page a")
	stop()
	if want := "page a\n3 done\n"; b.String() != want {
		t.Errorf("plain console wrote %q, want %q", b.String(), want)
	}
}

func TestFollowEndsTheLiveLine(t *testing.T) {
	var b strings.Builder
	c := NewConsole(&b, true)
	stop := c.Follow(time.Hour, func() string { return "4 done" })
	stop()
	c.Println("summary")
	if want := "4 done\nsummary\n"; b.String() != want {
		t.Errorf("live console wrote %q, want %q", b.String(), want)
	}
}

func TestRecentRateLooksAboutOneSecondBack(t *testing.T) {
	var r RecentRate
	base := time.Now()
	steps := []struct {
		ms   int
		n    int64
		want float64
	}{
		{0, 0, 0},
		{500, 10, 20},  // 10 in 0.5 s
		{1000, 40, 40}, // 40 in 1 s
		{1500, 50, 40}, // since 500 ms: 40 in 1 s
		{3000, 50, 0},  // nothing since 1500 ms
		{3500, 60, 5},  // since 1500 ms, the oldest sample kept: 10 in 2 s
	}
	for _, s := range steps {
		got := r.Update(base.Add(time.Duration(s.ms)*time.Millisecond), s.n)
		if got < s.want-0.1 || got > s.want+0.1 {
			t.Errorf("at %d ms the rate is %.2f, want %.1f", s.ms, got, s.want)
		}
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		Sleep(ctx, time.Hour)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second): // an hour's sleep would go on
		t.Fatal("Sleep of an hour went on after its context ended")
	}
}

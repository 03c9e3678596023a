package main

import (
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/examples/internal/demo"
	"github.com/trimeter-go/trimeter/examples/internal/demotest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	demotest.RunIfChild(fetchMain)
	goleak.VerifyTestMain(m)
}

func TestASmallRunHoldsItsLimitsAndAccountsForEveryPage(t *testing.T) {
	// 60 pages, more than the 5 + 40 that the first second may hold, so
	// that the server's count of starts checks the rate.
	cfg := config{pages: 60, atOnce: 3, perSecond: 40, burst: 5, slowness: 0.05, seed: 7, verbose: true}
	var out strings.Builder
	rep, err := run(context.Background(), cfg, demo.NewConsole(&out, false))
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.problems(); len(p) > 0 {
		t.Errorf("problems: %q", p)
	}
	if rep.planned == 0 || rep.failed != rep.planned || rep.ok != cfg.pages-rep.planned {
		t.Errorf("%d ok and %d failed, with %d of %d pages set to fail", rep.ok, rep.failed, rep.planned, cfg.pages)
	}
	if n := strings.Count(out.String(), "/page/"); n != cfg.pages {
		t.Errorf("printed %d page lines, want %d:\n%s", n, cfg.pages, out.String())
	}
	var summary strings.Builder
	rep.write(&summary)
	if !strings.Contains(summary.String(), "Limits held") {
		t.Errorf("summary does not say the limits held:\n%s", summary.String())
	}
}

func TestProblemsNameEveryBrokenLimit(t *testing.T) {
	cfg := config{pages: 10, atOnce: 2, perSecond: 5, burst: 1}
	begun := time.Now()
	rep := report{cfg: cfg, ok: 9, failed: 1, planned: 1, requests: 10, peakAtOnce: 3, begun: begun, starts: onSchedule(begun, cfg)}
	// The tenth request starts at 1.7 s, a token ahead: the limit allows
	// 1 + 5·1.7 by then.
	rep.starts[9] = begun.Add(1700 * time.Millisecond)
	p := rep.problems()
	if len(p) != 2 || !strings.Contains(p[0], "3 requests at once") || !strings.Contains(p[1], "10 requests started in the first 1.700 s, above the 9") {
		t.Errorf("problems = %q, want one for 3 at once and one for 10 started by 1.7 s", p)
	}
	rep.peakAtOnce, rep.starts = 2, onSchedule(begun, cfg)
	if p := rep.problems(); len(p) != 0 {
		t.Errorf("problems = %q for a run at its limits, want none", p)
	}
}

// onSchedule returns when a client that starts cfg.pages requests as soon
// as its limits allow starts each of them: a burst at begun, then one per
// token.
func onSchedule(begun time.Time, cfg config) []time.Time {
	ts := make([]time.Time, cfg.pages)
	for i := range ts {
		tokens := max(0, i+1-cfg.burst)
		ts[i] = begun.Add(time.Duration(float64(tokens) / cfg.perSecond * float64(time.Second)))
	}
	return ts
}

// The server's counts catch a client that does not keep to its rate: the
// same run with MaxPerSecond left out of the client's options.
func TestARunWithoutItsRateLimitIsCaught(t *testing.T) {
	cfg := config{pages: 60, atOnce: 3, perSecond: 40, burst: 5, slowness: 0.05, seed: 7, noRate: true}
	rep, err := run(context.Background(), cfg, demo.NewConsole(io.Discard, false))
	if err != nil {
		t.Fatal(err)
	}
	p := rep.problems()
	if len(p) != 1 || !strings.Contains(p[0], "requests started in the first") {
		t.Errorf("problems = %q, want the requests started above what the limit allows", p)
	}
}

// A task that begins late, as one does on a loaded machine when its
// goroutine waits for a thread, starts its request later than its token
// was granted; that cannot make an honest run look over its rate. Here
// the first 20 tasks begin only once the 21st has, 400 ms after their
// tokens: the second that follows holds their 21 starts and the 39 whose
// tokens come in it, 60 where a second of tokens holds 5 + 40.
func TestTasksThatBeginLateDoNotMakeAnHonestRunLookOverItsRate(t *testing.T) {
	cfg := config{pages: 60, atOnce: 25, perSecond: 40, burst: 5, slowness: 0.05, seed: 7}
	released := make(chan struct{})
	cfg.beforeStart = func(ctx context.Context, path string) {
		switch n, _ := strconv.Atoi(strings.TrimPrefix(path, "/page/")); {
		case n < 20:
			select {
			case <-released:
			case <-ctx.Done():
			}
		case n == 20:
			close(released)
		}
	}
	rep, err := run(context.Background(), cfg, demo.NewConsole(io.Discard, false))
	if err != nil {
		t.Fatal(err)
	}
	if n := demo.MaxInWindow(rep.starts, time.Second); n <= cfg.burst+int(cfg.perSecond) {
		t.Fatalf("the busiest second held %d starts, want more than %d: the tasks did not begin late", n, cfg.burst+int(cfg.perSecond))
	}
	if p := rep.problems(); len(p) > 0 {
		t.Errorf("problems = %q, want none", p)
	}
}

func TestProblemsNameAPageWithoutOneResult(t *testing.T) {
	cfg := config{pages: 3, atOnce: 2, perSecond: 5, burst: 1}
	rep := report{cfg: cfg, ok: 3, requests: 3, seen: []int{1, 2, 0}}
	p := rep.problems()
	if len(p) != 2 || !strings.Contains(p[0], "page 1 had 2 results") || !strings.Contains(p[1], "page 2 had 0 results") {
		t.Errorf("problems = %q, want page 1 with two results and page 2 with none", p)
	}
}

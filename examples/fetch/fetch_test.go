package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/trimeter-go/trimeter/examples/internal/demo"
	"github.com/trimeter-go/trimeter/examples/internal/demotest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	demotest.RunIfChild(fetchMain)
	goleak.VerifyTestMain(m)
}

func TestASmallRunHoldsItsLimitsAndAccountsForEveryPage(t *testing.T) {
	// 60 pages, more than the 5 + 40 that any second may hold, so that the
	// server's count of starts checks the rate. The client asks for 30 a
	// second: a request that leaves up to a third of a second after its
	// token still keeps within the bound.
	cfg := config{pages: 60, atOnce: 3, perSecond: 40, clientRate: 30, burst: 5, slowness: 0.05, seed: 7, verbose: true}
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
	rep := report{cfg: cfg, ok: 9, failed: 1, planned: 1, requests: 10, peakAtOnce: 3, maxInSecond: 7}
	p := rep.problems()
	if len(p) != 2 || !strings.Contains(p[0], "3 requests at once") || !strings.Contains(p[1], "7 requests started") {
		t.Errorf("problems = %q, want one for 3 at once and one for 7 within a second", p)
	}
	rep.peakAtOnce, rep.maxInSecond = 2, 6
	if p := rep.problems(); len(p) != 0 {
		t.Errorf("problems = %q for a run at its limits, want none", p)
	}
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
	if len(p) != 1 || !strings.Contains(p[0], "within one second") {
		t.Errorf("problems = %q, want the starts within one second above %d", p, rep.secondBound())
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

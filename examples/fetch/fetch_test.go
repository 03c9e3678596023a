package main

import (
	"context"
	"strings"
	"testing"

	"github.com/trimeter-go/trimeter/examples/internal/demo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestASmallRunHoldsItsLimitsAndAccountsForEveryPage(t *testing.T) {
	cfg := config{pages: 60, atOnce: 3, perSecond: 400, burst: 20, slowness: 0.05, seed: 7, verbose: true}
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

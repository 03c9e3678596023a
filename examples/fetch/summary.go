package main

import (
	"fmt"
	"io"
	"math"
	"time"
)

// report is what a run came to, as the client and the server counted it.
type report struct {
	cfg        config
	ok, failed int   // results the client received
	seen       []int // results received, by page
	planned    int   // pages the server was set to fail
	elapsed    time.Duration
	requests   int // requests the server received
	peakAtOnce int // most requests the server handled at once
	// begun is when the client began the run, before trimeter was
	// called; starts are when the client started each request, as the
	// requests told the server, in order of time.
	begun  time.Time
	starts []time.Time
}

// closest returns the moment at which the requests started came closest
// to what MaxPerSecond and MaxBurst allow, or went furthest over it: n
// requests had started by t after the run began, where burst + rate·t
// were allowed.
//
// The tokens hold every prefix of the run to that bound: a bucket that is
// full when trimeter is called can have granted at most burst + rate·t
// tokens t after the run began. A task reads the time of its start after
// its token was granted, a few microseconds later or, on a loaded machine,
// tens of milliseconds, and such a delay only makes a start count later,
// so an honest run stays within the bound whatever the load. A window
// that begins mid-run (any one second, say) has no such guarantee: a
// delay can move a start whose token came before the window into it, so
// that one second of starts holds more than one second of tokens.
//
// A client that goes over its rate goes over this bound too. The rate
// paces the demo from its first request to its last (eight at once would
// go about twice as fast), so the starts follow the bound closely, and a
// client that starts faster gets ahead of it: with MaxPerSecond(44), the
// 300th request starts at about 6.59 s, when only 273 are allowed
// (10 + 40·6.59).
func (r report) closest() (n int, t time.Duration, allowed float64) {
	worst := math.Inf(-1)
	for i, s := range r.starts {
		d := s.Sub(r.begun)
		a := float64(r.cfg.burst) + r.cfg.perSecond*d.Seconds()
		if over := float64(i+1) - a; over > worst {
			worst, n, t, allowed = over, i+1, d, a
		}
	}
	return n, t, allowed
}

// problems lists every way the run broke a limit or lost track of a page.
func (r report) problems() []string {
	var p []string
	if r.peakAtOnce > r.cfg.atOnce {
		p = append(p, fmt.Sprintf("the server handled %d requests at once, above MaxAtOnce(%d)", r.peakAtOnce, r.cfg.atOnce))
	}
	if n, t, allowed := r.closest(); float64(n) > allowed {
		p = append(p, fmt.Sprintf("%d requests started in the first %.3f s, above the %d that MaxBurst(%d) + MaxPerSecond(%g) allow",
			n, t.Seconds(), int(math.Floor(allowed)), r.cfg.burst, r.cfg.perSecond))
	}
	if r.ok+r.failed != r.cfg.pages || r.requests != r.cfg.pages {
		p = append(p, fmt.Sprintf("%d pages, %d requests, %d results", r.cfg.pages, r.requests, r.ok+r.failed))
	}
	for i, n := range r.seen {
		if n != 1 {
			p = append(p, fmt.Sprintf("page %d had %d results", i, n))
		}
	}
	if r.failed != r.planned {
		p = append(p, fmt.Sprintf("%d pages failed where %d were set to fail", r.failed, r.planned))
	}
	return p
}

// write prints the summary: the results, then each limit beside what the
// server saw, then the verdict.
func (r report) write(w io.Writer) {
	fmt.Fprintf(w, "\n%d pages in %.1fs: %d fetched, %d failed (the server was set to fail %d).\n\n",
		r.cfg.pages, r.elapsed.Seconds(), r.ok, r.failed, r.planned)
	n, t, allowed := r.closest()
	first := fmt.Sprintf("started by %.2f s", t.Seconds())
	fmt.Fprintf(w, "                        limit   the server saw\n")
	fmt.Fprintf(w, "  %-18s %8d   %14d   MaxAtOnce(%d)\n", "requests at once", r.cfg.atOnce, r.peakAtOnce, r.cfg.atOnce)
	fmt.Fprintf(w, "  %-18s %8d   %14d   MaxBurst(%d) + MaxPerSecond(%g) × %.2f s\n\n",
		first, int(math.Floor(allowed)), n, r.cfg.burst, r.cfg.perSecond, t.Seconds())
	problems := r.problems()
	if len(problems) == 0 {
		fmt.Fprintln(w, "Limits held: the server never saw more than the limits allow.")
		return
	}
	for _, p := range problems {
		fmt.Fprintln(w, "PROBLEM:", p)
	}
}

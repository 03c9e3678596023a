package main

import (
	"fmt"
	"io"
	"math"
	"time"
)

// report is what a run came to, as the client and the server counted it.
type report struct {
	cfg         config
	ok, failed  int   // results the client received
	seen        []int // results received, by page
	planned     int   // pages the server was set to fail
	elapsed     time.Duration
	requests    int // requests the server received
	peakAtOnce  int // most requests the server handled at once
	maxInSecond int // most requests that reached the server within one second
}

// secondBound is the most starts MaxPerSecond allows within one second:
// the burst, then the rate.
func (r report) secondBound() int {
	return r.cfg.burst + int(math.Floor(r.cfg.perSecond))
}

// problems lists every way the run broke a limit or lost track of a page.
func (r report) problems() []string {
	var p []string
	if r.peakAtOnce > r.cfg.atOnce {
		p = append(p, fmt.Sprintf("the server handled %d requests at once, above MaxAtOnce(%d)", r.peakAtOnce, r.cfg.atOnce))
	}
	if r.maxInSecond > r.secondBound() {
		p = append(p, fmt.Sprintf("%d requests started within one second, above %d", r.maxInSecond, r.secondBound()))
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
	fmt.Fprintf(w, "                        limit   the server saw\n")
	fmt.Fprintf(w, "  requests at once   %8d   %14d   MaxAtOnce(%d)\n", r.cfg.atOnce, r.peakAtOnce, r.cfg.atOnce)
	fmt.Fprintf(w, "  started in 1 s     %8d   %14d   MaxPerSecond(%g), MaxBurst(%d): %d + %g in any second\n\n",
		r.secondBound(), r.maxInSecond, r.cfg.perSecond, r.cfg.burst, r.cfg.burst, r.cfg.perSecond)
	problems := r.problems()
	if len(problems) == 0 {
		fmt.Fprintln(w, "Limits held: the server never saw more than the limits allow.")
		return
	}
	for _, p := range problems {
		fmt.Fprintln(w, "PROBLEM:", p)
	}
}

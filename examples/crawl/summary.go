package main

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trimeter-go/trimeter/throttle"
)

// report is what a crawl came to, as the hosts and the crawler counted it.
type report struct {
	cfg                 config
	links               []link
	hosts               []*host
	dir                 string
	elapsed             time.Duration
	seen                []int // results per link
	stored, failed      int   // results
	files               int   // files in the store
	fetch, parse, store throttle.Stats
}

func sum[K comparable](m map[K]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// reasons lists why a host turned requests away, and how many times.
func reasons(over map[string]int) string {
	var rs []string
	for why, n := range over {
		rs = append(rs, fmt.Sprintf("%d %s", n, why))
	}
	slices.Sort(rs)
	return strings.Join(rs, ", ")
}

// setToFail counts the pages that no number of attempts could fetch.
func (r report) setToFail() int {
	plans := map[string]hostPlan{}
	for _, h := range r.cfg.hosts {
		plans[h.name] = h
	}
	n := 0
	for _, l := range r.links {
		if failsForGood(plans[l.host], l.page, r.cfg.attempts) {
			n++
		}
	}
	return n
}

// problems lists every limit a host saw exceeded, every page served twice,
// and every way the crawl lost track of a page.
func (r report) problems() []string {
	var p []string
	requests := 0
	for _, h := range r.hosts {
		c := h.counts()
		requests += c.requests
		if n := sum(c.over); n > 0 {
			p = append(p, fmt.Sprintf("%s turned away %d request(s) over its limits (%s)", h.plan.name, n, reasons(c.over)))
		}
		for _, n := range c.twice {
			p = append(p, fmt.Sprintf("%s served page %d more than once", h.plan.name, n))
		}
	}
	for i, n := range r.seen {
		if n != 1 {
			p = append(p, fmt.Sprintf("%s came out of the pipeline %d times", r.links[i].url(), n))
		}
	}
	if r.failed != r.setToFail() || r.files != r.stored {
		p = append(p, fmt.Sprintf("%d pages failed where %d were set to fail; %d stored, %d files", r.failed, r.setToFail(), r.stored, r.files))
	}
	if int(r.fetch.Started) != requests {
		p = append(p, fmt.Sprintf("the crawler counted %d requests, the hosts %d", r.fetch.Started, requests))
	}
	return p
}

// write prints the summary: the totals, a table of what each host counted
// beside its limits, and the verdict.
func (r report) write(w io.Writer) {
	fmt.Fprintf(w, "\n%d pages in %.1fs: %d stored, %d failed (%d were set to fail for good); %d requests, %d of them retries.\n",
		len(r.links), r.elapsed.Seconds(), r.stored, r.failed, r.setToFail(), r.fetch.Started, r.fetch.Retried)
	kept := " (removed; -keep keeps them)"
	if r.cfg.keep {
		kept = ""
	}
	fmt.Fprintf(w, "Stages: fetch %d ok, parse %d, store %d files in %s%s.\n\n",
		r.fetch.Finished-r.fetch.Failed, r.parse.Finished, r.files, r.dir, kept)
	r.writeHosts(w)
	problems := r.problems()
	if len(problems) == 0 {
		fmt.Fprintln(w, "\nLimits held, as the hosts counted them: no request over a limit, no page served twice, every page out once.")
		return
	}
	fmt.Fprintln(w)
	for _, p := range problems {
		fmt.Fprintln(w, "PROBLEM:", p)
	}
}

// writeHosts prints a line per host, a line of totals and a line of limits.
func (r report) writeHosts(w io.Writer) {
	const head = "%-18s %-6s %5s %8s %7s %6s %4s %4s %4s %4s %12s\n"
	fmt.Fprintf(w, head, "host", "kind", "pages", "requests", "at once", "in 1 s", "503", "500", "404", "429", "served twice")
	all := hostCounts{sent: map[int]int{}}
	for _, h := range r.hosts {
		c := h.counts()
		row(w, h.plan.name, h.plan.kind.String(), h.plan.pages, c)
		all.requests += c.requests
		all.peak, all.maxInSecond = max(all.peak, c.peak), max(all.maxInSecond, c.maxInSecond)
		for s, n := range c.sent {
			all.sent[s] += n
		}
		all.twice = append(all.twice, c.twice...)
	}
	row(w, "all hosts", "", len(r.links), all)
	fmt.Fprintf(w, head, "each host's limit", "", "", "", strconv.Itoa(r.cfg.rules.atOnce), strconv.Itoa(r.cfg.rules.perSecond), "", "", "", "0", "0")
}

func row(w io.Writer, name, kind string, pages int, c hostCounts) {
	fmt.Fprintf(w, "%-18s %-6s %5d %8d %7d %6d %4d %4d %4d %4d %12d\n", name, kind, pages, c.requests, c.peak, c.maxInSecond,
		c.sent[http.StatusServiceUnavailable], c.sent[http.StatusInternalServerError], c.sent[http.StatusNotFound],
		c.sent[http.StatusTooManyRequests], len(c.twice))
}

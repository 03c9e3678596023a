package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strconv"
	"time"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/examples/internal/demo"
	"github.com/trimeter-go/trimeter/throttle"
)

// config sets the size of a run and the limits it asks for.
type config struct {
	pages     int
	atOnce    int     // MaxAtOnce
	perSecond float64 // MaxPerSecond
	burst     int     // MaxBurst
	slowness  float64 // scales the pages' latencies
	seed      uint64
	verbose   bool // print a line per page
	// Tests only. noRate leaves MaxPerSecond out, to show that a broken
	// rate limit is caught. beforeStart, when set, is called as each task
	// begins, before it reads the time of its start: a test makes tasks
	// begin late, as a loaded machine does.
	noRate      bool
	beforeStart func(ctx context.Context, path string)
}

// demoConfig takes about eight seconds: the rate limit allows 10 requests
// at once and then 40 a second. Eight at a time, the pages' latencies
// would allow about twice that rate, so the rate is the limit that paces
// the run from its first request to its last, and the server's count of
// the requests started since the run began checks it (see report.closest).
var demoConfig = config{pages: 300, atOnce: 8, perSecond: 40, burst: 10, slowness: 0.5, seed: 1, verbose: true}

// result is what fetching one page came to.
type result struct {
	bytes int64
	took  time.Duration
}

// run starts a server, fetches all its pages under cfg's limits, printing
// to con as results arrive, and reports what the server saw.
func run(ctx context.Context, cfg config, con *demo.Console) (report, error) {
	pages := planPages(cfg.pages, cfg.seed, cfg.slowness)
	epoch := time.Now()
	srv, err := startServer(pages, epoch)
	if err != nil {
		return report{}, err
	}
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.atOnce}}
	defer client.CloseIdleConnections()

	con.Println(fmt.Sprintf("Fetching %d pages from %s: at most %d at once, %g per second (bursts of %d).",
		cfg.pages, srv.url, cfg.atOnce, cfg.perSecond, cfg.burst))
	var mon throttle.Monitor
	// The run begins before trimeter is called, so before its bucket of
	// tokens exists.
	start := time.Now()
	rep := report{cfg: cfg, planned: plannedFailures(pages), begun: start}
	stop := con.Follow(time.Second, progress(&mon, cfg.pages, start))
	fetch := fetcher(client, srv.url, epoch)
	if cfg.beforeStart != nil {
		fetch = beginLate(cfg.beforeStart, fetch)
	}
	err = fetchAll(ctx, cfg, &mon, fetch, con, &rep)
	stop()
	rep.elapsed = time.Since(start)
	rep.requests = srv.tally.Requests()
	rep.peakAtOnce = srv.tally.Peak()
	rep.starts = srv.tally.Arrivals()
	return rep, err
}

// fetchAll fetches every page under cfg's limits, watched by mon, and
// counts the results in rep as they arrive. It returns an error only when
// the run as a whole failed (it was interrupted, say); a page's failure is
// a result like any other.
func fetchAll(ctx context.Context, cfg config, mon *throttle.Monitor, fetch func(context.Context, string) (result, error), con *demo.Console, rep *report) error {
	opts := []trimeter.Option{trimeter.MaxAtOnce(cfg.atOnce), trimeter.Watch(mon)}
	if !cfg.noRate {
		opts = append(opts, trimeter.MaxPerSecond(cfg.perSecond), trimeter.MaxBurst(cfg.burst))
	}
	rep.seen = make([]int, cfg.pages)
	for in, out := range trimeter.Outcomes(ctx, paths(cfg.pages), fetch, opts...) {
		if in.Index < 0 { // the run as a whole ended (an interrupt, a bad option): out.Err says why
			return out.Err
		}
		rep.seen[in.Index]++
		res, err := out.Unwrap()
		if err != nil {
			rep.failed++
			if cfg.verbose {
				con.Println(fmt.Sprintf("  FAIL %-10s %v", in.Value, err))
			}
			continue
		}
		rep.ok++
		if cfg.verbose {
			con.Println(fmt.Sprintf("  ok   %-10s %5.1f KB %5d ms", in.Value, float64(res.bytes)/1024, res.took.Milliseconds()))
		}
	}
	return ctx.Err()
}

// paths yields the path of each of n pages.
func paths(n int) iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := range n {
			if !yield(fmt.Sprintf("/page/%d", i)) {
				return
			}
		}
	}
}

// fetcher returns the task: get base+path and read the whole answer. The
// request tells the server when it started, counted from epoch.
func fetcher(client *http.Client, base string, epoch time.Time) func(context.Context, string) (result, error) {
	return func(ctx context.Context, path string) (result, error) {
		start := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return result{}, err
		}
		req.Header.Set(startedHeader, strconv.FormatInt(int64(start.Sub(epoch)), 10))
		resp, err := client.Do(req)
		if err != nil {
			return result{}, err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil {
			return result{}, err
		}
		if resp.StatusCode != http.StatusOK {
			return result{}, errors.New(resp.Status)
		}
		return result{bytes: n, took: time.Since(start)}, nil
	}
}

// beginLate returns fetch, run after wait.
func beginLate(wait func(context.Context, string), fetch func(context.Context, string) (result, error)) func(context.Context, string) (result, error) {
	return func(ctx context.Context, path string) (result, error) {
		wait(ctx, path)
		return fetch(ctx, path)
	}
}

// plannedFailures counts the pages planned to fail.
func plannedFailures(pages []page) int {
	n := 0
	for _, p := range pages {
		if p.status != http.StatusOK {
			n++
		}
	}
	return n
}

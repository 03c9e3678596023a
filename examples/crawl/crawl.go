package main

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/examples/internal/demo"
	"github.com/trimeter-go/trimeter/throttle"
)

// config sets the hosts, their rules, and what the crawler asks for.
type config struct {
	hosts       []hostPlan
	rules       rules
	hostAtOnce  int     // the crawler's MaxAtOnce for each host
	perHost     float64 // the crawler's MaxPerSecond for each host
	attempts    int     // Retry
	atOnce      int     // the fetch stage's MaxAtOnce over all hosts
	storeAtOnce int     // the store stage's MaxAtOnce
	seed        uint64
	verbose     bool // print each page that failed
	keep        bool // keep the stored files
}

// demoConfig takes about 15 seconds. The crawler asks each host for a
// little less than it allows (8 a second where 10 are allowed), as a
// crawler should: the host counts requests when they arrive, and the
// network can bunch them up on the way.
var demoConfig = config{
	hosts: demoHosts(),
	rules: rules{atOnce: 2, perSecond: 10, pause: time.Second, grace: 250 * time.Millisecond,
		busyEvery: 20, slowness: 1},
	hostAtOnce: 2, perHost: 8, attempts: 3, atOnce: 32, storeAtOnce: 4, seed: 1, verbose: true,
}

// monitors watch the three stages.
type monitors struct{ fetch, parse, store throttle.Monitor }

// run starts the hosts, crawls them into a store in a temporary directory,
// printing to con as it goes, and reports what the hosts and the crawler
// counted.
func run(ctx context.Context, cfg config, con *demo.Console) (report, error) {
	return runWith(ctx, cfg, con, fetcher)
}

// runWith is run with the crawler's fetch made by fetcher from the hosts'
// client: the tests give it a crawler that misbehaves.
func runWith(ctx context.Context, cfg config, con *demo.Console, fetcher func(*http.Client) func(context.Context, link) (fetched, error)) (report, error) {
	f, err := startFarm(cfg.hosts, cfg.rules)
	if err != nil {
		return report{}, err
	}
	defer f.Close()
	client := f.client(cfg.hostAtOnce)
	defer client.CloseIdleConnections()
	st := store{}
	if st.dir, err = os.MkdirTemp("", "trimeter-crawl-"); err != nil {
		return report{}, err
	}
	if !cfg.keep {
		defer os.RemoveAll(st.dir)
	}

	links := sitemap(cfg.hosts, cfg.seed)
	con.Println(fmt.Sprintf("Crawling %d pages from %d hosts served on %s; each host allows %d requests at once and %d a second,",
		len(links), len(cfg.hosts), f.addr, cfg.rules.atOnce, cfg.rules.perSecond))
	con.Println(fmt.Sprintf("the crawler asks for %d at once and %g a second per host, %d attempts per page.",
		cfg.hostAtOnce, cfg.perHost, cfg.attempts))
	rep := report{cfg: cfg, links: links, hosts: f.hosts, dir: st.dir}
	var mons monitors
	start := time.Now()
	stop := con.Follow(2*time.Second, progress(&mons, len(links), start))
	err = consume(ctx, pipeline(ctx, cfg, links, fetcher(client), st, &mons), cfg, con, &rep)
	stop()
	rep.elapsed = time.Since(start)
	rep.fetch, rep.parse, rep.store = mons.fetch.Stats(), mons.parse.Stats(), mons.store.Stats()
	if err != nil {
		return rep, err
	}
	rep.files, err = st.count()
	return rep, err
}

// pipeline chains the three stages: fetch, with limits per host, retries
// and push-back; parse, one task per CPU; store, four at once. A page that
// fails in any stage comes out at the end as a failed outcome, with the
// link it came from.
func pipeline(ctx context.Context, cfg config, links []link, fetch func(context.Context, link) (fetched, error), st store, m *monitors) iter.Seq2[trimeter.Input[link], trimeter.Outcome[string]] {
	pages := trimeter.Outcomes(ctx, slices.Values(links), fetch,
		trimeter.MaxAtOnce(cfg.atOnce),
		trimeter.PerKey(func(l link) string { return l.host },
			trimeter.MaxAtOnce(cfg.hostAtOnce), trimeter.MaxPerSecond(cfg.perHost)),
		trimeter.Retry(cfg.attempts),
		// Room for the links of hosts at their limits to wait aside while
		// the other hosts' links go ahead.
		trimeter.Lookahead(128),
		trimeter.Watch(&m.fetch),
	)
	docs := trimeter.ThenOutcomes(ctx, pages, parse,
		trimeter.MaxAtOnce(runtime.GOMAXPROCS(0)),
		trimeter.Watch(&m.parse),
	)
	return trimeter.ThenOutcomes(ctx, docs, st.put,
		trimeter.MaxAtOnce(cfg.storeAtOnce),
		trimeter.Watch(&m.store),
	)
}

// consume counts the pipeline's results in rep, printing failures to con.
// It returns an error only when the crawl as a whole failed (a bad option,
// or an interrupt).
func consume(ctx context.Context, results iter.Seq2[trimeter.Input[link], trimeter.Outcome[string]], cfg config, con *demo.Console, rep *report) error {
	rep.seen = make([]int, len(rep.links))
	for in, out := range results {
		if in.Index == -1 { // the crawl as a whole ended: out.Err says why
			return out.Err
		}
		if in.Index < 0 || in.Index >= len(rep.seen) {
			return fmt.Errorf("result for input %d: %w", in.Index, out.Err)
		}
		rep.seen[in.Index]++
		if out.Err != nil {
			rep.failed++
			if cfg.verbose {
				con.Println("  FAIL", out.Err)
			}
			continue
		}
		rep.stored++
	}
	return ctx.Err()
}

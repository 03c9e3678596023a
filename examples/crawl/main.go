// Command crawl crawls about 2,000 pages from 20 hosts that it serves
// itself on 127.0.0.1, in a pipeline of three stages: fetch (at most 2
// requests at once and 8 a second per host, up to 3 attempts, holding off
// a host for its Retry-After when it answers 429 or 503), parse (one task
// per CPU) and store (files in a temporary directory, 4 at once). It prints
// a live progress line per stage and ends with what each host counted
// beside its limits. It exits with status 1 if a host saw a limit exceeded,
// served a page twice, or a page went missing.
//
// Usage:
//
//	go run ./examples/crawl [-quiet] [-keep]
//
// With -quiet, or when the output is not a terminal, no line is redrawn in
// place; -quiet also leaves out the failed pages. With -keep the stored
// files are kept.
//
// An interrupt or a SIGTERM stops the run: crawl then prints
// "crawl: interrupted" and exits with status 1, removing its stored files
// unless -keep was given (then it names their directory).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/trimeter-go/trimeter/examples/internal/demo"
)

func main() {
	os.Exit(crawlMain())
}

func crawlMain() int {
	quiet := flag.Bool("quiet", false, "no line per failed page, no line redrawn in place")
	keep := flag.Bool("keep", false, "keep the stored files")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "crawl: unexpected argument %q: crawl takes only flags\n", flag.Arg(0))
		flag.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := demoConfig
	cfg.verbose, cfg.keep = !*quiet, *keep
	con := demo.NewConsole(os.Stdout, !*quiet && demo.IsTerminal(os.Stdout))
	rep, err := run(ctx, cfg, con)
	if err != nil {
		if ctx.Err() != nil { // an interrupt or a SIGTERM
			err = errors.New("interrupted")
			if cfg.keep && rep.dir != "" { // no summary will say where they are
				err = fmt.Errorf("%w; the stored pages are kept in %s", err, rep.dir)
			}
		}
		fmt.Fprintln(os.Stderr, "crawl:", err)
		return 1
	}
	rep.write(os.Stdout)
	if len(rep.problems()) > 0 {
		return 1
	}
	return 0
}

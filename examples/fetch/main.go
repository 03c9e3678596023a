// Command fetch fetches a few hundred pages from a test server that it
// starts on 127.0.0.1, at most 8 requests at once and 40 per second,
// printing each result as it arrives under a live progress line. It ends
// with what the server counted, beside the limits: the most requests it
// handled at once, and the requests started by the moment of the run that
// came closest to MaxBurst + MaxPerSecond·t. It exits with status 1 if a
// limit was exceeded or a result went missing.
//
// Usage:
//
//	go run ./examples/fetch [-quiet]
//
// With -quiet, or when the output is not a terminal, no line is redrawn in
// place; -quiet also leaves out the line per page.
//
// An interrupt or a SIGTERM stops the run: fetch then prints
// "fetch: interrupted" and exits with status 1.
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
	os.Exit(fetchMain())
}

func fetchMain() int {
	quiet := flag.Bool("quiet", false, "no line per page, no line redrawn in place")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "fetch: unexpected argument %q: fetch takes only flags\n", flag.Arg(0))
		flag.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg := demoConfig
	cfg.verbose = !*quiet
	con := demo.NewConsole(os.Stdout, !*quiet && demo.IsTerminal(os.Stdout))
	rep, err := run(ctx, cfg, con)
	if err != nil {
		if ctx.Err() != nil { // an interrupt or a SIGTERM
			err = errors.New("interrupted")
		}
		fmt.Fprintln(os.Stderr, "fetch:", err)
		return 1
	}
	rep.write(os.Stdout)
	if len(rep.problems()) > 0 {
		return 1
	}
	return 0
}

// Command compare runs every workload of package benchmarks through
// trimeter and its peers, round-robin, and prints the tables of the
// README's Performance section in Markdown.
//
//	cd benchmarks && go run ./cmd/compare          # full run, a few minutes
//	cd benchmarks && go run ./cmd/compare -quick   # seconds, for CI
//
// Progress goes to standard error, the tables to standard output.
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"time"
)

// config holds the sizes of a run.
type config struct {
	rounds     int           // rounds of the per-item workloads
	items      int           // inputs per run of a no-op workload
	ioItems    int           // inputs per run of the I/O workload
	rateRounds int           // rounds of the rate workload
	rateTime   time.Duration // length of one rate run
	memItems   int           // items consumed by one memory run
	only       *regexp.Regexp
	rate       bool
	memory     bool
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "small sizes and few rounds: seconds instead of minutes")
	rounds := fs.Int("rounds", 0, "rounds of the per-item workloads (default 7, or 3 with -quick)")
	items := fs.Int("items", 0, "inputs per run of a no-op workload (default 200000, or 20000 with -quick)")
	only := fs.String("only", "", "run only the per-item workloads whose name matches this regular expression")
	rate := fs.Bool("rate", true, "run the rate workloads")
	memory := fs.Bool("memory", true, "run the memory workloads")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		// The flags end at the first argument that is not one: those after
		// it would be dropped.
		return config{}, fmt.Errorf("unexpected argument %q: compare takes only flags", fs.Arg(0))
	}
	if *rounds < 0 {
		return config{}, fmt.Errorf("-rounds %d: want 1 or more (0 for the default)", *rounds)
	}
	if *items < 0 {
		return config{}, fmt.Errorf("-items %d: want 1 or more (0 for the default)", *items)
	}
	cfg := config{rounds: 7, items: 200_000, ioItems: 10_000, rateRounds: 3,
		rateTime: 500 * time.Millisecond, memItems: 10_000_000, rate: *rate, memory: *memory}
	if *quick {
		cfg = config{rounds: 3, items: 20_000, ioItems: 1_000, rateRounds: 1,
			rateTime: 100 * time.Millisecond, memItems: 200_000, rate: *rate, memory: *memory}
	}
	if *rounds > 0 {
		cfg.rounds = *rounds
	}
	if *items > 0 {
		cfg.items = *items
	}
	re, err := regexp.Compile(*only)
	if err != nil {
		return config{}, fmt.Errorf("-only: %w", err)
	}
	cfg.only = re
	return cfg, nil
}

func run(cfg config) error {
	printHeader(cfg)
	noop, io, err := runPerItem(cfg)
	if err != nil {
		return err
	}
	printPerItem(noop, io)
	printRatios(noop)
	if cfg.rate {
		rates, err := runRates(cfg)
		if err != nil {
			return err
		}
		printRates(rates)
	}
	if cfg.memory {
		mem, err := runMemory(cfg)
		if err != nil {
			return err
		}
		printMemory(mem, cfg.memItems)
	}
	return nil
}

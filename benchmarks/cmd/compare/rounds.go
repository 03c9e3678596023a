package main

import (
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/trimeter-go/trimeter/benchmarks"
)

// results holds the samples of every case of one kind of workload, by
// shape and then by peer, with the shapes in the order they ran.
type results struct {
	shapes  []string
	samples map[string]map[string][]benchmarks.Sample
}

func (r *results) add(shape, peer string, s benchmarks.Sample) {
	if r.samples == nil {
		r.samples = map[string]map[string][]benchmarks.Sample{}
	}
	if r.samples[shape] == nil {
		r.samples[shape] = map[string][]benchmarks.Sample{}
		r.shapes = append(r.shapes, shape)
	}
	r.samples[shape][peer] = append(r.samples[shape][peer], s)
}

// groups splits cases by shape, keeping their order.
func groups(cases []benchmarks.Case) [][]benchmarks.Case {
	var gs [][]benchmarks.Case
	for _, c := range cases {
		if n := len(gs); n > 0 && gs[n-1][0].Shape == c.Shape {
			gs[n-1] = append(gs[n-1], c)
			continue
		}
		gs = append(gs, []benchmarks.Case{c})
	}
	return gs
}

// runPerItem runs the no-op and the I/O workloads round-robin: in each
// round every shape runs once per implementation, starting with a
// different implementation each round.
func runPerItem(cfg config) (noop, io results, err error) {
	noopGroups := groups(filter(benchmarks.NoOpCases(), cfg))
	ioGroups := groups(filter(benchmarks.IOCases(), cfg))
	for round := range cfg.rounds {
		start := time.Now()
		if err := runRound(noopGroups, round, cfg.items, &noop); err != nil {
			return noop, io, err
		}
		if err := runRound(ioGroups, round, cfg.ioItems, &io); err != nil {
			return noop, io, err
		}
		fmt.Fprintf(os.Stderr, "round %d/%d: %v\n", round+1, cfg.rounds, time.Since(start).Round(time.Millisecond))
	}
	return noop, io, nil
}

func filter(cases []benchmarks.Case, cfg config) []benchmarks.Case {
	return slices.DeleteFunc(cases, func(c benchmarks.Case) bool { return !cfg.only.MatchString(c.Shape) })
}

func runRound(gs [][]benchmarks.Case, round, items int, into *results) error {
	for _, g := range gs {
		for k := range g {
			c := g[(k+round)%len(g)]
			s, err := benchmarks.Measure(c, items)
			if err != nil {
				return fmt.Errorf("%s, %s: %w", c.Shape, c.Peer, err)
			}
			into.add(c.Shape, c.Peer, s)
		}
	}
	return nil
}

// rateKey names one cell of the rate table.
type rateKey struct {
	row  int // index into benchmarks.RateCases()
	rate float64
}

// Rates are the targets of the rate workload, in starts per second.
var Rates = []float64{1_000, 10_000, 100_000}

// runRates runs every rate case at every target, round-robin.
func runRates(cfg config) (map[rateKey][]benchmarks.RateSample, error) {
	cases := benchmarks.RateCases()
	out := map[rateKey][]benchmarks.RateSample{}
	for round := range cfg.rateRounds {
		start := time.Now()
		for _, r := range Rates {
			for k := range cases {
				i := (k + round) % len(cases)
				most := int(r*cfg.rateTime.Seconds()) + cases[i].BurstAt(r)
				s, err := benchmarks.MeasureRate(cases[i], r, most, cfg.rateTime)
				if err != nil {
					return nil, fmt.Errorf("rate %s: %w", cases[i].Name, err)
				}
				out[rateKey{i, r}] = append(out[rateKey{i, r}], s)
			}
		}
		fmt.Fprintf(os.Stderr, "rate round %d/%d: %v\n", round+1, cfg.rateRounds, time.Since(start).Round(time.Millisecond))
	}
	return out, nil
}

// memResult is the heap growth of one memory case.
type memResult struct {
	benchmarks.MemoryCase
	grew int64
	took time.Duration
}

func runMemory(cfg config) ([]memResult, error) {
	var out []memResult
	for _, c := range benchmarks.MemoryCases() {
		start := time.Now()
		grew, err := benchmarks.HeapGrowth(c, cfg.memItems)
		if err != nil {
			return nil, fmt.Errorf("memory %s, %s: %w", c.Shape, c.Peer, err)
		}
		took := time.Since(start)
		fmt.Fprintf(os.Stderr, "memory %s, %s: %v\n", c.Shape, c.Peer, took.Round(time.Millisecond))
		out = append(out, memResult{c, grew, took})
	}
	return out, nil
}

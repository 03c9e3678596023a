package main

import (
	"slices"
	"testing"

	"github.com/trimeter-go/trimeter/benchmarks"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// package benchmarks imports ants, whose default pool starts two
		// housekeeping goroutines when the package loads.
		goleak.IgnoreAnyFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreAnyFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
	)
}

// samples returns one sample per peer, of the ns/item given.
func samples(ns map[string]float64) map[string][]benchmarks.Sample {
	byPeer := make(map[string][]benchmarks.Sample)
	for peer, n := range ns {
		byPeer[peer] = []benchmarks.Sample{{NsPerItem: n}}
	}
	return byPeer
}

func TestTheBestLibraryIsNoHandRolledCode(t *testing.T) {
	byPeer := samples(map[string]float64{
		benchmarks.Trimeter:    100,
		benchmarks.Goroutines:  50,
		benchmarks.HandWritten: 60,
		benchmarks.Errgroup:    300,
		benchmarks.Pond:        200,
	})
	if got := fastest(byPeer, benchmarks.Trimeter); got != benchmarks.Goroutines {
		t.Errorf("best peer is %q, want %q", got, benchmarks.Goroutines)
	}
	if got := fastest(byPeer, handRolled...); got != benchmarks.Pond {
		t.Errorf("best library is %q, want %q", got, benchmarks.Pond)
	}
}

func TestRatiosToEachPeer(t *testing.T) {
	byPeer := samples(map[string]float64{benchmarks.Trimeter: 100, benchmarks.Pond: 200, benchmarks.Conc: 80})
	got := ratiosToEach(byPeer, []string{benchmarks.Pond, benchmarks.Conc, benchmarks.Ants})
	if want := []string{"0.50", "1.25", "–"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestParseFlagsRejectsABadPattern(t *testing.T) {
	if _, err := parseFlags([]string{"-only", "("}); err == nil {
		t.Error("a bad -only pattern was accepted")
	}
}

package cputime_test

import (
	"runtime"
	"testing"

	"github.com/trimeter-go/trimeter/internal/cputime"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Work done after a reading shows as more CPU time used in a later one.
func TestUsedGrowsWithWork(t *testing.T) {
	before, ok := cputime.Used()
	if !ok {
		switch runtime.GOOS {
		case "windows", "plan9", "js", "wasip1":
			return // no getrusage: the benchmarks leave the figure out
		}
		t.Fatalf("no CPU time on %s", runtime.GOOS)
	}
	x := 0
	for round := range 100 { // each round some 10 ms of work, more than a clock tick
		for i := range 20_000_000 {
			x ^= i + round
		}
		if after, _ := cputime.Used(); after > before {
			return
		}
	}
	t.Errorf("CPU time stayed at %v over a second's work (%d)", before, x)
}

package trimeter_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/trimeter-go/trimeter"
)

// A run under a rate allocates nothing per start: the permits of the Rate
// it builds for MaxPerSecond, its own and each key's, are reused. (The
// race detector makes the pool drop a quarter of them; the bound there is
// looser, and still far below one a start.)
func TestRateAllocatesNothingPerStart(t *testing.T) {
	const items = 5000
	most := 0.1
	if raceOn {
		most = 0.5
	}
	keyOf := func(v int) int { return v % 4 }
	cases := []struct {
		name string
		opts []trimeter.Option
	}{
		{"MaxAtOnce(1)", []trimeter.Option{trimeter.MaxAtOnce(1), trimeter.MaxPerSecond(1e9)}},
		{"MaxAtOnce(8)", []trimeter.Option{trimeter.MaxAtOnce(8), trimeter.MaxPerSecond(1e9)}},
		{"no MaxAtOnce", []trimeter.Option{trimeter.MaxPerSecond(1e9)}},
		{"per key", []trimeter.Option{trimeter.MaxAtOnce(8), trimeter.PerKey(keyOf, trimeter.MaxPerSecond(1e9))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			noop := func(context.Context, int) error { return nil }
			// A first run grows what a run keeps for later ones.
			if err := trimeter.RunOnEach(context.Background(), benchCount(items), noop, c.opts...); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			err := trimeter.RunOnEach(context.Background(), benchCount(items), noop, c.opts...)
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if per := float64(after.Mallocs-before.Mallocs) / items; per > most {
				t.Errorf("%.3f allocations per start, want at most %v", per, most)
			}
		})
	}
}

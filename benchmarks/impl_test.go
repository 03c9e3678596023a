package benchmarks_test

import (
	"fmt"
	"iter"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trimeter-go/trimeter/benchmarks"
)

// gauge counts calls running at once and keeps the peak.
type gauge struct{ now, peak atomic.Int64 }

func (g *gauge) enter() {
	n := g.now.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (g *gauge) leave() { g.now.Add(-1) }

// counted returns work that counts its calls per input and lets other
// goroutines run while it holds its place in the gauge.
func counted(calls []atomic.Int32, g *gauge) benchmarks.Work {
	return func(v int) int {
		g.enter()
		defer g.leave()
		calls[v].Add(1)
		runtime.Gosched()
		return 2 * v
	}
}

func checkOnce(t *testing.T, calls []atomic.Int32) {
	t.Helper()
	for v := range calls {
		if n := calls[v].Load(); n != 1 {
			t.Fatalf("input %d ran %d times, want once", v, n)
		}
	}
}

func checkPeak(t *testing.T, g *gauge, n int) {
	t.Helper()
	if p := g.peak.Load(); n > 0 && p > int64(n) {
		t.Fatalf("%d calls ran at once, limit %d", p, n)
	}
}

// limitsOf returns the limits an implementation takes.
func limitsOf(peer string) []int {
	switch peer {
	case benchmarks.HandWritten:
		return []int{1, 8, 64}
	case benchmarks.Goroutines:
		return []int{0}
	}
	return benchmarks.Limits
}

const inputs = 2000

func TestEachForEachRunsEveryInputOnceWithinItsLimit(t *testing.T) {
	for peer, f := range benchmarks.ForEaches {
		for _, n := range limitsOf(peer) {
			t.Run(fmt.Sprintf("%s/n=%d", peer, n), func(t *testing.T) {
				calls := make([]atomic.Int32, inputs)
				var g gauge
				if err := f(benchmarks.Count(inputs), n, counted(calls, &g)); err != nil {
					t.Fatal(err)
				}
				checkOnce(t, calls)
				checkPeak(t, &g, n)
			})
		}
	}
}

func TestEachMapYieldsEveryResultOnceWithinItsLimit(t *testing.T) {
	sets := map[string]map[string]benchmarks.Map{
		"as finished":          benchmarks.Maps,
		"as finished, bounded": benchmarks.BoundedMaps,
		"in order":             benchmarks.OrderedMaps,
	}
	for set, maps := range sets {
		for peer, m := range maps {
			for _, n := range limitsOf(peer) {
				if set == "in order" && n == 0 {
					continue
				}
				t.Run(fmt.Sprintf("%s/%s/n=%d", set, peer, n), func(t *testing.T) {
					checkMap(t, m, n, set == "in order")
				})
			}
		}
	}
}

func checkMap(t *testing.T, m benchmarks.Map, n int, ordered bool) {
	calls := make([]atomic.Int32, inputs)
	var g gauge
	seen := make([]int, inputs)
	next := 0
	err := m(benchmarks.Count(inputs), n, counted(calls, &g), func(r int) bool {
		v := r / 2
		seen[v]++
		if ordered && v != next {
			t.Errorf("got the result of input %d, want %d", v, next)
		}
		next = v + 1
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	checkOnce(t, calls)
	checkPeak(t, &g, n)
	for v, k := range seen {
		if k != 1 {
			t.Fatalf("result of input %d yielded %d times, want once", v, k)
		}
	}
}

func TestEachMapStopsAnInfiniteInputWhenTheConsumerStops(t *testing.T) {
	const want = 100
	for _, c := range benchmarks.MemoryCases() {
		t.Run(c.Shape+"/"+c.Peer, func(t *testing.T) {
			got := 0
			err := c.Map(benchmarks.Forever(), 8, func(v int) int { return v }, func(int) bool {
				got++
				return got < want
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("yield called %d times after it returned false at %d", got, want)
			}
		})
	}
}

func TestEachLimiterStartsEveryInputOnce(t *testing.T) {
	const starts = 50
	for _, c := range benchmarks.RateCases() {
		t.Run(fmt.Sprintf("%s/burst=%d", c.Name, c.BurstAt(1e6)), func(t *testing.T) {
			calls := make([]atomic.Int32, starts)
			err := c.Run(benchmarks.Count(starts), 1e6, c.BurstAt(1e6), func(v int) { calls[v].Add(1) })
			if err != nil {
				t.Fatal(err)
			}
			checkOnce(t, calls)
		})
	}
}

// A map that ends its results before the items asked for is reported, not
// measured: its heap growth and time would be those of a shorter run.
func TestHeapGrowthReportsResultsThatEndEarly(t *testing.T) {
	short := func(in iter.Seq[int], _ int, work benchmarks.Work, yield func(int) bool) error {
		for v := range in {
			if v == 3 || !yield(work(v)) {
				break
			}
		}
		return nil
	}
	_, err := benchmarks.HeapGrowth(benchmarks.MemoryCase{Shape: "short", Peer: "made up", Map: short}, 10)
	if err == nil || !strings.Contains(err.Error(), "after 3 of 10") {
		t.Errorf("HeapGrowth = %v, want an error saying the results ended after 3 of 10", err)
	}
	c := benchmarks.MemoryCases()[0]
	if _, err := benchmarks.HeapGrowth(c, 100); err != nil {
		t.Errorf("HeapGrowth of %s, %s: %v", c.Shape, c.Peer, err)
	}
}

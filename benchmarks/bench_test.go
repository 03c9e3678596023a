package benchmarks_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/benchmarks"
)

// BenchmarkPerItem runs every per-item workload once per implementation;
// one op is one input. cmd/compare runs the same cases round-robin and
// prints them side by side.
func BenchmarkPerItem(b *testing.B) {
	cases := append(benchmarks.NoOpCases(), benchmarks.IOCases()...)
	for _, c := range cases {
		b.Run(c.Shape+"/"+c.Peer, func(b *testing.B) {
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			start := time.Now()
			ideal, err := c.Run(b.N)
			elapsed := time.Since(start)
			b.StopTimer()
			runtime.ReadMemStats(&after)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N), "ns/item")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N), "allocs/item")
			if ideal > 0 {
				b.ReportMetric(float64(elapsed)/float64(ideal), "elapsed/ideal")
			}
		})
	}
}

// BenchmarkRate runs every rate limiter at 10,000 starts per second; one
// op is one start.
func BenchmarkRate(b *testing.B) {
	for _, c := range benchmarks.RateCases() {
		b.Run(fmt.Sprintf("%s/burst=%d", c.Name, c.BurstAt(10_000)), func(b *testing.B) {
			s, err := benchmarks.MeasureRate(c, 10_000, b.N, time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			if burst := c.BurstAt(10_000); s.Starts > burst {
				// Fewer starts than the bucket holds reach no rate.
				b.ReportMetric(s.AchievedPct, "rate%")
			}
			b.ReportMetric(s.Excess, "window-excess")
			if s.HasCPU {
				b.ReportMetric(float64(s.CPUPerStart.Nanoseconds()), "cpu-ns/start")
			}
		})
	}
}

// BenchmarkMemory consumes b.N results of an infinite input; it reports
// the live heap's largest growth while the run goes on.
func BenchmarkMemory(b *testing.B) {
	for _, c := range benchmarks.MemoryCases() {
		b.Run(c.Shape+"/"+c.Peer, func(b *testing.B) {
			b.ReportAllocs()
			grew, err := benchmarks.HeapGrowth(c, b.N)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(grew), "heap-B")
		})
	}
}

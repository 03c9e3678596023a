package benchmarks

import (
	"runtime"
	"time"
)

// A Sample is what one timed run of a Case came to.
type Sample struct {
	NsPerItem     float64 // elapsed time per input
	AllocsPerItem float64 // heap allocations per input
	// Efficiency is the elapsed time over the ideal one, for workloads
	// that have an ideal; 0 otherwise.
	Efficiency float64
}

// Measure runs c over items inputs after a garbage collection, and
// reports the time and the allocations per item.
func Measure(c Case, items int) (Sample, error) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	ideal, err := c.Run(items)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil {
		return Sample{}, err
	}
	s := Sample{
		NsPerItem:     float64(elapsed.Nanoseconds()) / float64(items),
		AllocsPerItem: float64(after.Mallocs-before.Mallocs) / float64(items),
	}
	if ideal > 0 {
		s.Efficiency = float64(elapsed) / float64(ideal)
	}
	return s, nil
}

// LiveHeap returns the bytes of live heap objects, after a collection.
func LiveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

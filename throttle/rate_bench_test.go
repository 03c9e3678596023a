package throttle_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/throttle"
)

// BenchmarkRate measures a shared Rate on the real clock: waiters callers
// loop on Acquire, and each grant is one op. It reports the achieved rate
// after the initial burst as a percentage of the target (rate%), the
// largest number of starts by
// which any window of the callers' observed start times exceeds
// burst + rate·t (excess; the meter's own grant times never do, see
// TestRateNeverExceedsItsBoundInAnyWindow, so this shows scheduling jitter
// between a grant and its caller's clock reading), and the CPU time the
// whole process spent per start (cpu-ns/start).
//
// Run with -benchtime 1s or more for figures; at 1,000 starts per second
// every op takes a millisecond.
func BenchmarkRate(b *testing.B) {
	for _, perSecond := range []float64{1_000, 10_000, 100_000} {
		for _, waiters := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%.0f/s/burst=1/waiters=%d", perSecond, waiters), func(b *testing.B) {
				benchRate(b, perSecond, 1, waiters)
			})
		}
	}
	// A burst that covers 2ms of tokens absorbs a late timer: no spinning.
	for _, perSecond := range []float64{10_000, 100_000} {
		burst := int(perSecond * 0.002)
		for _, waiters := range []int{1, 8} {
			b.Run(fmt.Sprintf("%.0f/s/burst=%d/waiters=%d", perSecond, burst, waiters), func(b *testing.B) {
				benchRate(b, perSecond, burst, waiters)
			})
		}
	}
}

func benchRate(b *testing.B, perSecond float64, burst, waiters int) {
	b.ReportAllocs()
	r := throttle.NewRate(perSecond, burst)
	starts := make([]time.Time, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu0, cpuOK := cpuTime()
	b.ResetTimer()
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p, err := r.Acquire(context.Background())
				if err != nil {
					b.Error(err)
					return
				}
				now := time.Now()
				p.Done(throttle.Outcome{Status: throttle.Succeeded})
				i := next.Add(1) - 1
				if i >= int64(len(starts)) {
					return
				}
				starts[i] = now
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	cpu1, _ := cpuTime()
	slices.SortFunc(starts, func(x, y time.Time) int { return x.Compare(y) })
	// The bucket starts full: burst starts come at once, then one per
	// token.
	if span := starts[len(starts)-1].Sub(starts[0]); len(starts) > burst && span > 0 {
		achieved := float64(len(starts)-burst) / span.Seconds()
		b.ReportMetric(100*achieved/perSecond, "rate%")
	}
	b.ReportMetric(windowExcess(starts, perSecond, burst), "excess")
	if cpuOK {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/start")
	}
}

// windowExcess returns by how many starts the busiest window of starts
// (sorted) exceeds burst + perSecond·t, or 0.
func windowExcess(starts []time.Time, perSecond float64, burst int) float64 {
	worst, best := 0.0, 0.0
	for j, t := range starts {
		x := perSecond*t.Sub(starts[0]).Seconds() - float64(j)
		if j == 0 || x > best {
			best = x
		}
		// starts i..j for the best i: j−i+1 − burst − rate·(t_j − t_i)
		worst = max(worst, best-x+1-float64(burst))
	}
	return worst
}

package trimeter_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/internal/cputime"
	"github.com/trimeter-go/trimeter/throttle"
)

// These benchmarks measure; they assert nothing about time. One op is one
// input unless a benchmark says otherwise, so `-benchtime 100x` keeps every
// one of them tiny. The figures of the README come from larger runs, for
// example `-benchtime 10000000x` for BenchmarkInfiniteInputHeap.

// benchCount yields 0, 1, ..., n-1.
func benchCount(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

// benchForever yields 0, 1, 2, ... until its consumer stops.
func benchForever() iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := 0; ; i++ {
			if !yield(i) {
				return
			}
		}
	}
}

func benchNoopEach(context.Context, int) error           { return nil }
func benchNoopMap(_ context.Context, v int) (int, error) { return v, nil }

// benchLimits are the limits of the per-item benchmarks.
var benchLimits = []struct {
	name string
	opts []trimeter.Option
}{
	{"n=1", []trimeter.Option{trimeter.MaxAtOnce(1)}},
	{"n=8", []trimeter.Option{trimeter.MaxAtOnce(8)}},
	{"n=64", []trimeter.Option{trimeter.MaxAtOnce(64)}},
	{"unlimited", nil},
	// A rate that never makes a start wait: what going through one costs,
	// where the calling goroutine starts every task and where the workers
	// take turns to.
	{"n=1,rate", []trimeter.Option{trimeter.MaxAtOnce(1), trimeter.MaxPerSecond(1e9)}},
	{"n=8,rate", []trimeter.Option{trimeter.MaxAtOnce(8), trimeter.MaxPerSecond(1e9)}},
}

// benchPerItem times run over b.N inputs and reports ns and allocations per
// item.
func benchPerItem(b *testing.B, run func(items int) error) {
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	start := time.Now()
	err := run(b.N)
	elapsed := time.Since(start)
	b.StopTimer()
	runtime.ReadMemStats(&after)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N), "ns/item")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N), "allocs/item")
}

// benchDrainAMap ranges over AMap's results to the end.
func benchDrainAMap(items int, opts ...trimeter.Option) error {
	for _, err := range trimeter.AMap(context.Background(), benchCount(items), benchNoopMap, opts...) {
		if err != nil {
			return err
		}
	}
	return nil
}

func BenchmarkRunOnEach(b *testing.B) {
	for _, l := range benchLimits {
		b.Run(l.name, func(b *testing.B) {
			benchPerItem(b, func(items int) error {
				return trimeter.RunOnEach(context.Background(), benchCount(items), benchNoopEach, l.opts...)
			})
		})
	}
}

func BenchmarkAMap(b *testing.B) {
	for _, l := range benchLimits {
		b.Run(l.name, func(b *testing.B) {
			benchPerItem(b, func(items int) error { return benchDrainAMap(items, l.opts...) })
		})
	}
}

func BenchmarkAMapOrdered(b *testing.B) {
	for _, l := range benchLimits[:3] {
		b.Run(l.name, func(b *testing.B) {
			opts := append(slices.Clone(l.opts), trimeter.Ordered())
			benchPerItem(b, func(items int) error { return benchDrainAMap(items, opts...) })
		})
	}
}

// benchWindowExcess returns the largest number of starts, over every window
// [s[i], s[j]] of the sorted schedule s (nanoseconds), beyond
// burst + rate·(s[j]-s[i]); 0 when the bound holds everywhere.
func benchWindowExcess(s []int64, rate float64, burst int) float64 {
	excess, best := 0.0, 0.0
	for j, t := range s {
		tokens := rate * float64(t) / 1e9
		if j == 0 || tokens-float64(j) > best {
			best = tokens - float64(j)
		}
		excess = max(excess, float64(j+1)-tokens+best-float64(burst))
	}
	return excess
}

// benchDefaultBurst is the size of MaxPerSecond's default bucket, as the
// documentation of MaxBurst gives it: the tokens that accrue in 5 ms, and
// at least one.
func benchDefaultBurst(rate float64) int { return max(1, int(rate*0.005)) }

// BenchmarkMaxPerSecond starts b.N tasks under a rate limit on the real
// clock, with the default bucket and with MaxBurst(1), and reports the
// achieved rate (percent of the target, from just before the run to the
// last start, burst left out), the largest window excess over
// burst + rate·t, counted from the times the tasks started, and the CPU
// time of the process per start (where the platform reports it).
func BenchmarkMaxPerSecond(b *testing.B) {
	for _, rate := range []float64{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("%gk/s/default-burst", rate/1000), func(b *testing.B) {
			benchRate(b, rate, benchDefaultBurst(rate), trimeter.MaxPerSecond(rate))
		})
		b.Run(fmt.Sprintf("%gk/s/burst=1", rate/1000), func(b *testing.B) {
			benchRate(b, rate, 1, trimeter.MaxPerSecond(rate), trimeter.MaxBurst(1))
		})
	}
}

func benchRate(b *testing.B, rate float64, burst int, opts ...trimeter.Option) {
	b.ReportAllocs()
	starts := make([]int64, b.N)
	t0 := time.Now()
	fn := func(_ context.Context, v int) error {
		starts[v] = int64(time.Since(t0))
		return nil
	}
	runtime.GC() // the garbage of the benchmarks before is not this one's CPU time
	cpu0, cpuOK := cputime.Used()
	b.ResetTimer()
	err := trimeter.RunOnEach(context.Background(), benchCount(b.N), fn, opts...)
	b.StopTimer()
	cpu1, _ := cputime.Used()
	if err != nil {
		b.Fatal(err)
	}
	if cpuOK {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/start")
	}
	slices.Sort(starts)
	if last := starts[len(starts)-1]; b.N > burst && last > 0 {
		b.ReportMetric(100*float64(b.N-burst)/(float64(last)/1e9)/rate, "rate%")
	}
	b.ReportMetric(benchWindowExcess(starts, rate, burst), "window-excess")
}

// benchLiveHeap returns the bytes of live heap objects, after a collection.
func benchLiveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// benchHeapGrowth consumes items results of seq, sampling the live heap four
// times on the way, then breaks. It returns the largest growth over the
// live heap before the run.
func benchHeapGrowth(b *testing.B, seq iter.Seq2[int, error], items int) int64 {
	base := benchLiveHeap()
	var grew int64
	seen := 0
	every := max(items/4, 1)
	for _, err := range seq {
		if err != nil {
			b.Fatal(err)
		}
		seen++
		if seen%every == 0 || seen == items {
			grew = max(grew, benchLiveHeap()-base)
		}
		if seen == items {
			break
		}
	}
	return grew
}

// BenchmarkInfiniteInputHeap consumes b.N results of an infinite input
// at MaxAtOnce(64) and reports the live heap's largest growth during the
// run (run with -benchtime 10000000x for ten million items).
func BenchmarkInfiniteInputHeap(b *testing.B) {
	b.ReportAllocs()
	seq := trimeter.AMap(context.Background(), benchForever(), benchNoopMap, trimeter.MaxAtOnce(64))
	b.ResetTimer()
	grew := benchHeapGrowth(b, seq, b.N)
	b.StopTimer()
	b.ReportMetric(float64(grew), "heap-B")
}

// BenchmarkSleepingTasks runs b.N tasks that sleep 1 ms, 64 at once, and
// reports the elapsed time over the ideal: the sleeps' measured total
// divided by 64.
func BenchmarkSleepingTasks(b *testing.B) {
	b.ReportAllocs()
	var slept atomic.Int64
	fn := func(context.Context, int) error {
		t := time.Now()
		time.Sleep(time.Millisecond)
		slept.Add(int64(time.Since(t)))
		return nil
	}
	b.ResetTimer()
	start := time.Now()
	err := trimeter.RunOnEach(context.Background(), benchCount(b.N), fn, trimeter.MaxAtOnce(64))
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(elapsed)/(float64(slept.Load())/64), "elapsed/ideal")
}

// benchInFlight is how many context-aware calls are running when the break
// latency benchmarks stop a run.
const benchInFlight = 64

// benchBlocker returns a function that returns at once for input 0 and
// otherwise waits for its context; ready is closed once benchInFlight calls
// wait.
func benchBlocker(ready chan<- struct{}) func(context.Context, int) (int, error) {
	var waiting atomic.Int32
	return func(ctx context.Context, v int) (int, error) {
		if v == 0 {
			return 0, nil
		}
		if waiting.Add(1) == benchInFlight {
			close(ready)
		}
		<-ctx.Done()
		return 0, ctx.Err()
	}
}

// BenchmarkBreak measures, per op, one run stopped while 64 calls that
// watch their context are in flight: the time from the consumer's break
// (AMap) or the parent's cancel (RunOnEach) to the return of the iterator
// or of RunOnEach.
func BenchmarkBreak(b *testing.B) {
	b.Run("AMap-break", func(b *testing.B) { benchStops(b, "break", benchBreakAMap) })
	b.Run("RunOnEach-cancel", func(b *testing.B) { benchStops(b, "cancel", benchCancelRunOnEach) })
}

// benchStops runs stop b.N times and reports the mean and the largest of
// the times it returns, per what (ns/break, max-ns/break).
func benchStops(b *testing.B, what string, stop func(*testing.B) time.Duration) {
	b.ReportAllocs()
	var total, worst time.Duration
	for i := 0; i < b.N; i++ {
		d := stop(b)
		total, worst = total+d, max(worst, d)
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/"+what)
	b.ReportMetric(float64(worst.Nanoseconds()), "max-ns/"+what)
}

func benchBreakAMap(b *testing.B) time.Duration {
	ready := make(chan struct{})
	var broke time.Time
	seq := trimeter.AMap(context.Background(), benchCount(benchInFlight+1), benchBlocker(ready), trimeter.MaxAtOnce(benchInFlight+1))
	for _, err := range seq {
		if err != nil {
			b.Fatal(err)
		}
		<-ready
		broke = time.Now()
		break
	}
	return time.Since(broke)
}

func benchCancelRunOnEach(b *testing.B) time.Duration {
	ready := make(chan struct{})
	cancelled := make(chan time.Time, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-ready:
			cancelled <- time.Now()
			cancel()
		case <-ctx.Done():
		}
	}()
	block := benchBlocker(ready)
	fn := func(ctx context.Context, v int) error {
		_, err := block(ctx, v)
		return err
	}
	err := trimeter.RunOnEach(ctx, benchCount(benchInFlight+1), fn, trimeter.MaxAtOnce(benchInFlight+1))
	returned := time.Now()
	if !errors.Is(err, context.Canceled) {
		b.Fatalf("RunOnEach returned %v, want context.Canceled", err)
	}
	return returned.Sub(<-cancelled)
}

// The slow-key benchmarks run 5,000 inputs of fast keys with 50 inputs of
// one slow key (1 start per second, burst 1) spread through them, at
// MaxAtOnce(8), and compare the time until every fast input is done with
// the time without the slow inputs.
const (
	benchFastInputs = 5000
	benchSlowEvery  = 101 // one input in benchSlowEvery is slow: 50 in 5,050
	benchSlowInputs = benchFastInputs / (benchSlowEvery - 1)
)

// benchIsSlow says whether input v of the mixed sequence has the slow key.
func benchIsSlow(v int) bool { return v%benchSlowEvery == benchSlowEvery/2 }

// benchMixed yields the fast inputs with the slow ones spread through them;
// without slow ones it yields the fast inputs only.
func benchMixed(withSlow bool) iter.Seq[int] {
	return func(yield func(int) bool) {
		for v := 0; v < benchFastInputs+benchSlowInputs; v++ {
			if (withSlow || !benchIsSlow(v)) && !yield(v) {
				return
			}
		}
	}
}

// benchUntilFastDone ranges over AMap of in and returns the time until the
// fast inputs' results are all in; it breaks then.
func benchUntilFastDone(b *testing.B, in iter.Seq[int], opts ...trimeter.Option) time.Duration {
	start := time.Now()
	fast := 0
	for v, err := range trimeter.AMap(context.Background(), in, benchNoopMap, opts...) {
		if err != nil {
			b.Fatal(err)
		}
		if !benchIsSlow(v) {
			fast++
		}
		if fast == benchFastInputs {
			break
		}
	}
	return time.Since(start)
}

// benchSlowKeyRatio runs b.N pairs of runs, with and without the slow inputs,
// each with the options opts(withSlow) gives, and reports the ratio of
// the total times.
func benchSlowKeyRatio(b *testing.B, opts func(withSlow bool) []trimeter.Option) {
	var with, without time.Duration
	for i := 0; i < b.N; i++ {
		with += benchUntilFastDone(b, benchMixed(true), opts(true)...)
		without += benchUntilFastDone(b, benchMixed(false), opts(false)...)
	}
	b.ReportMetric(float64(with)/float64(without), "with/without")
	b.ReportMetric(float64(with.Nanoseconds())/float64(b.N), "ns/run-with-slow")
	b.ReportMetric(float64(without.Nanoseconds())/float64(b.N), "ns/run-without")
}

// benchOpenMeter lets every task start at once.
type benchOpenMeter struct{}

type benchOpenPermit struct{}

func (benchOpenPermit) Done(throttle.Outcome) {}

func (benchOpenMeter) Acquire(context.Context) (throttle.Permit, error) {
	return benchOpenPermit{}, nil
}

func (benchOpenMeter) TryAcquire(context.Context) (throttle.Permit, time.Duration, error) {
	return benchOpenPermit{}, 0, nil
}

// benchSlowKeyMeters gives the key "slow" a bucket of one start per second and
// every other key no limit.
type benchSlowKeyMeters struct{ slow *throttle.Rate }

func (m benchSlowKeyMeters) ForKey(key string) throttle.Meter {
	if key == "slow" {
		return m.slow
	}
	return benchOpenMeter{}
}

func (benchSlowKeyMeters) Acquire(context.Context) (throttle.Permit, error) {
	return benchOpenPermit{}, nil
}

// BenchmarkPerKeySlowKey reports with/without: how much longer the fast
// inputs take when the slow key's inputs are mixed in. One op is one pair
// of runs.
//
// "nine-keys" spreads the fast inputs over nine keys with no limit and
// gives the slow key its limit through a keyed meter; "own-keys" gives
// each fast input a key of its own and every key MaxPerSecond(1), so that
// only the slow key ever waits.
func BenchmarkPerKeySlowKey(b *testing.B) {
	b.Run("nine-keys", func(b *testing.B) {
		fast := [9]string{"fast0", "fast1", "fast2", "fast3", "fast4", "fast5", "fast6", "fast7", "fast8"}
		key := func(v int) string {
			if benchIsSlow(v) {
				return "slow"
			}
			return fast[v%9]
		}
		benchSlowKeyRatio(b, func(bool) []trimeter.Option {
			meters := benchSlowKeyMeters{slow: throttle.NewRate(1, 1)}
			return []trimeter.Option{trimeter.MaxAtOnce(8), trimeter.PerKey(key, trimeter.WithMeter(meters))}
		})
	})
	b.Run("own-keys", func(b *testing.B) {
		key := func(v int) int {
			if benchIsSlow(v) {
				return -1
			}
			return v
		}
		benchSlowKeyRatio(b, func(bool) []trimeter.Option {
			return []trimeter.Option{trimeter.MaxAtOnce(8), trimeter.PerKey(key, trimeter.MaxPerSecond(1))}
		})
	})
}

// BenchmarkPerKeyManyKeys streams b.N inputs, each with a key of its own,
// at MaxAtOnce(64), and reports the live heap's largest growth (run with
// -benchtime 1000000x for a million keys).
func BenchmarkPerKeyManyKeys(b *testing.B) {
	own := func(v int) int { return v }
	for _, pk := range []struct {
		name string
		opt  trimeter.Option
	}{
		{"MaxAtOnce(1)", trimeter.PerKey(own, trimeter.MaxAtOnce(1))},
		{"MaxPerSecond(1000)", trimeter.PerKey(own, trimeter.MaxPerSecond(1000))},
	} {
		b.Run(pk.name, func(b *testing.B) {
			b.ReportAllocs()
			seq := trimeter.AMap(context.Background(), benchForever(), benchNoopMap, trimeter.MaxAtOnce(64), pk.opt)
			b.ResetTimer()
			grew := benchHeapGrowth(b, seq, b.N)
			b.StopTimer()
			b.ReportMetric(float64(grew), "heap-B")
		})
	}
}

// BenchmarkWatch runs b.N inputs through RunOnEach at MaxAtOnce(8) in ten
// runs, five without Watch and five with it, and reports the per-item cost
// of each and their ratio. Each kind runs once untimed first, and the two
// take turns at going first, so neither pays more of the warming up.
func BenchmarkWatch(b *testing.B) {
	const runs = 10
	per := max(b.N/runs, 1)
	mon := new(throttle.Monitor)
	run := func(watch bool) time.Duration {
		opts := []trimeter.Option{trimeter.MaxAtOnce(8)}
		if watch {
			opts = append(opts, trimeter.Watch(mon))
		}
		start := time.Now()
		if err := trimeter.RunOnEach(context.Background(), benchCount(per), benchNoopEach, opts...); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	run(false)
	run(true)
	var off, on time.Duration
	for i := range runs {
		// off, on, then on, off, and so on.
		if watch := i%2 == 1 != (i/2%2 == 1); watch {
			on += run(true)
		} else {
			off += run(false)
		}
	}
	items := float64(per * runs / 2)
	b.ReportMetric(float64(off.Nanoseconds())/items, "ns/item-off")
	b.ReportMetric(float64(on.Nanoseconds())/items, "ns/item-on")
	b.ReportMetric(float64(on)/float64(off), "on/off")
}

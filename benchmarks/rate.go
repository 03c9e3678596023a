package benchmarks

import (
	"context"
	"iter"
	"runtime"
	"time"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/internal/cputime"
	"go.uber.org/ratelimit"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
)

// A Limiter starts a task for every value of in, at most perSecond per
// second with the given burst, and calls start(v) as each task starts.
type Limiter func(in iter.Seq[int], perSecond float64, burst int, start func(v int)) error

// A RateCase is one way to limit the rate of starts.
type RateCase struct {
	Name string // the table's row
	// Burst is the bucket size, and the b of the bound b + rate·t; 0
	// stands for the tokens that accrue in 5 ms (at least 1): trimeter's
	// default burst, and a bucket of that size for the others.
	Burst int
	Run   Limiter // runs the case
}

// DefaultBurstSpan is how long trimeter's default bucket takes to fill,
// as the documentation of trimeter.MaxBurst gives it.
const DefaultBurstSpan = 5 * time.Millisecond

// BurstAt returns the bucket size of c at perSecond.
func (c RateCase) BurstAt(perSecond float64) int {
	if c.Burst > 0 {
		return c.Burst
	}
	return max(1, int(perSecond*DefaultBurstSpan.Seconds()))
}

// RateCases lists the rate limiters compared, in the table's order.
func RateCases() []RateCase {
	return []RateCase{
		{"trimeter, default burst", 0, trimeterDefaultBurst(0)},
		{"trimeter", 1, trimeterRate(0)},
		{"trimeter", 10, trimeterRate(0)},
		{"trimeter", 100, trimeterRate(0)},
		{"trimeter, MaxAtOnce(1), default burst", 0, trimeterDefaultBurst(1)},
		{"trimeter, MaxAtOnce(64), default burst", 0, trimeterDefaultBurst(64)},
		{"trimeter, MaxAtOnce(64)", 1, trimeterRate(64)},
		{"x/time/rate Wait", 1, xrateWait},
		{"x/time/rate Wait", 10, xrateWait},
		{"x/time/rate Wait", 100, xrateWait},
		{"x/time/rate Wait", 0, xrateWait},
		{"go.uber.org/ratelimit, no slack", 1, uberTake(ratelimit.WithoutSlack)},
		{"go.uber.org/ratelimit, default slack", 11, uberTake()},
		{"errgroup(64) + x/time/rate, Wait before Go", 0, errgroupWaitBeforeGo},
		{"errgroup(64) + x/time/rate, Wait before Go", 1, errgroupWaitBeforeGo},
		{"errgroup(64) + x/time/rate, Wait in the task", 1, errgroupWaitInTask},
	}
}

func trimeterRate(n int) Limiter {
	return func(in iter.Seq[int], perSecond float64, burst int, start func(int)) error {
		fn := func(_ context.Context, v int) error {
			start(v)
			return nil
		}
		opts := atOnce(n, trimeter.MaxPerSecond(perSecond), trimeter.MaxBurst(burst))
		return trimeter.RunOnEach(context.Background(), in, fn, opts...)
	}
}

// trimeterDefaultBurst leaves the bucket size to trimeter (n == 0: no
// MaxAtOnce).
func trimeterDefaultBurst(n int) Limiter {
	return func(in iter.Seq[int], perSecond float64, _ int, start func(int)) error {
		fn := func(_ context.Context, v int) error {
			start(v)
			return nil
		}
		return trimeter.RunOnEach(context.Background(), in, fn, atOnce(n, trimeter.MaxPerSecond(perSecond))...)
	}
}

// xrateWait is one loop that waits for the limiter before each start.
func xrateWait(in iter.Seq[int], perSecond float64, burst int, start func(int)) error {
	ctx := context.Background()
	lim := rate.NewLimiter(rate.Limit(perSecond), burst)
	for v := range in {
		if err := lim.Wait(ctx); err != nil {
			return err
		}
		start(v)
	}
	return nil
}

// uberTake is one loop that takes from the limiter, made with opts,
// before each start. Without slack its bucket holds one start (burst 1);
// with the default slack of 10, a late wake-up lets up to ten starts that
// fell behind go at once, a bucket of 11. The case gives the burst.
func uberTake(opts ...ratelimit.Option) Limiter {
	return func(in iter.Seq[int], perSecond float64, _ int, start func(int)) error {
		rl := ratelimit.New(int(perSecond), opts...)
		for v := range in {
			rl.Take()
			start(v)
		}
		return nil
	}
}

// errgroupWaitBeforeGo waits for the limiter in the loop that starts the
// goroutines, 64 at most at once.
func errgroupWaitBeforeGo(in iter.Seq[int], perSecond float64, burst int, start func(int)) error {
	ctx := context.Background()
	lim := rate.NewLimiter(rate.Limit(perSecond), burst)
	var g errgroup.Group
	g.SetLimit(64)
	for v := range in {
		if err := lim.Wait(ctx); err != nil {
			break
		}
		g.Go(func() error {
			start(v)
			return nil
		})
	}
	return g.Wait()
}

// errgroupWaitInTask lets each of 64 goroutines wait for the limiter.
func errgroupWaitInTask(in iter.Seq[int], perSecond float64, burst int, start func(int)) error {
	ctx := context.Background()
	lim := rate.NewLimiter(rate.Limit(perSecond), burst)
	var g errgroup.Group
	g.SetLimit(64)
	for v := range in {
		g.Go(func() error {
			if err := lim.Wait(ctx); err != nil {
				return err
			}
			start(v)
			return nil
		})
	}
	return g.Wait()
}

// A RateSample is what one timed run of a RateCase came to.
type RateSample struct {
	Starts      int           // tasks started
	AchievedPct float64       // achieved rate, percent of the target
	Excess      float64       // largest window excess over burst + rate·t
	CPUPerStart time.Duration // the process's CPU time per start
	HasCPU      bool          // whether the platform reports CPU time
}

// MeasureRate runs c at perSecond until it has started most tasks or d
// has passed, whichever comes first, and reports how close it came to the
// rate and whether any window went over the bound.
func MeasureRate(c RateCase, perSecond float64, most int, d time.Duration) (RateSample, error) {
	burst := c.BurstAt(perSecond)
	starts := make([]int64, most)
	pulled := 0
	runtime.GC() // the garbage of the cases before is not this one's CPU time
	cpu0, hasCPU := cputime.Used()
	t0 := time.Now()
	in := until(Count(most), t0.Add(d), &pulled)
	err := c.Run(in, perSecond, burst, func(v int) { starts[v] = int64(time.Since(t0)) })
	cpu1, _ := cputime.Used()
	if err != nil || pulled == 0 {
		return RateSample{HasCPU: hasCPU}, err
	}
	starts = starts[:pulled]
	return RateSample{
		Starts:      pulled,
		AchievedPct: AchievedRate(starts, perSecond, burst),
		Excess:      WindowExcess(starts, perSecond, burst),
		CPUPerStart: (cpu1 - cpu0) / time.Duration(pulled),
		HasCPU:      hasCPU,
	}, nil
}

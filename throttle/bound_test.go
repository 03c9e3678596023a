package throttle

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/internal/testclock"
)

// These tests watch a Rate's gate from inside, so that every grant is
// logged at the instant the bucket made it, on the fake clock.

// loggedGate records the time of every grant of the gate it wraps.
type loggedGate struct {
	gate
	mu    sync.Mutex
	times map[uint64]int64 // grant tag → nanoseconds since the meter was built
}

func (g *loggedGate) take(now int64) uint64 {
	tag := g.gate.take(now)
	g.mu.Lock()
	g.times[tag] = now
	g.mu.Unlock()
	return tag
}

// used returns the times of the grants that were not given back, sorted.
func (g *loggedGate) used(refunded map[uint64]bool) []int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []int64
	for tag := uint64(1); tag <= uint64(len(g.times)); tag++ {
		if !refunded[tag] {
			out = append(out, g.times[tag])
		}
	}
	return out
}

func logGrants(r *Rate) *loggedGate {
	g := &loggedGate{gate: r.gate, times: map[uint64]int64{}}
	r.gate = g
	return g
}

// checkBound fails t when, between two of the grant times (sorted), more
// than burst + perSecond·t grants were made. The arithmetic is exact.
func checkBound(t *testing.T, grants []int64, perSecond float64, burst int) {
	t.Helper()
	perNs := new(big.Rat).SetFloat64(perSecond)
	perNs.Quo(perNs, big.NewRat(1e9, 1))
	at := func(i int) *big.Rat { // rate·t_i − i
		v := new(big.Rat).Mul(perNs, big.NewRat(grants[i], 1))
		return v.Sub(v, big.NewRat(int64(i), 1))
	}
	var best *big.Rat
	from := 0
	for j := range grants {
		if j > 0 && grants[j] < grants[j-1] {
			t.Fatalf("grant %d at %v before grant %d at %v", j, grants[j], j-1, grants[j-1])
		}
		if v := at(j); best == nil || v.Cmp(best) > 0 {
			best, from = v, j
		}
		// grants from..j number j−from+1; allowed: burst + rate·(t_j − t_from)
		excess := new(big.Rat).Sub(best, at(j))
		excess.Add(excess, big.NewRat(1-int64(burst), 1))
		if excess.Sign() > 0 {
			t.Fatalf("%d grants in [%v, %v]: more than %d + %v/s × %v", j-from+1,
				time.Duration(grants[from]), time.Duration(grants[j]), burst, perSecond,
				time.Duration(grants[j]-grants[from]))
		}
	}
}

// drive runs workers that acquire from r in a loop and give back a share
// of their permits unused, while the clock moves by step each time every
// worker waits in line. It returns the tags given back.
func drive(t *testing.T, clock *testclock.Clock, r *Rate, workers, steps int, refund float64, seed uint64, step func(*rand.Rand) time.Duration) map[uint64]bool {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	refunded := map[uint64]bool{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(seed, uint64(w)))
			giveBack := func(p Permit) {
				mu.Lock()
				refunded[p.(*ratePermit).seq] = true
				mu.Unlock()
				p.Done(Outcome{Status: Unused})
			}
			var held Permit // given back later, after other grants
			for {
				p, err := r.Acquire(ctx)
				if err != nil {
					return
				}
				if held != nil && rnd.IntN(2) == 0 {
					giveBack(held)
					held = nil
				}
				switch x := rnd.Float64(); {
				case x < refund/2:
					giveBack(p)
				case x < refund && held == nil:
					held = p
				default:
					p.Done(Outcome{Status: Succeeded})
				}
			}
		}()
	}
	rnd := rand.New(rand.NewPCG(seed, math.MaxUint64))
	idle := func() {
		deadline := time.Now().Add(10 * time.Second)
		for r.Stats().Waiting != int64(workers) {
			if time.Now().After(deadline) {
				t.Fatal("workers did not all wait in line")
			}
			runtime.Gosched()
		}
		clock.WaitFor(t, 1)
	}
	for range steps {
		idle()
		clock.Advance(step(rnd))
	}
	idle()
	cancel()
	wg.Wait()
	return refunded
}

func TestRateNeverExceedsItsBoundInAnyWindow(t *testing.T) {
	cases := []struct {
		perSecond float64
		burst     int
	}{
		{10, 1}, {0.2, 1}, {3, 1}, {7.5, 2}, {3, 4}, {1000, 10},
	}
	for _, tc := range cases {
		for _, refund := range []float64{0, 0.3} {
			name := fmt.Sprintf("rate %v burst %d refund %v", tc.perSecond, tc.burst, refund)
			t.Run(name, func(t *testing.T) {
				seed := rand.Uint64()
				defer func() {
					if t.Failed() {
						t.Logf("seed %d", seed)
					}
				}()
				clock := testclock.New()
				r := NewRate(tc.perSecond, tc.burst, WithClock(clock))
				g := logGrants(r)
				iv := time.Duration(math.Ceil(1e9 / tc.perSecond))
				const workers = 4
				step := func(rnd *rand.Rand) time.Duration {
					switch rnd.IntN(4) {
					case 0: // exactly when the first waiter's token is due
						return max(0, r.Delay(1)-workers*iv)
					case 1:
						return time.Duration(rnd.Int64N(int64(2 * iv)))
					case 2:
						return iv / 7
					default:
						return time.Duration(rnd.IntN(6)) * iv
					}
				}
				refunded := drive(t, clock, r, workers, 150, refund, seed, step)
				grants := g.used(refunded)
				if len(grants) < 50 {
					t.Fatalf("seed %d: only %d grants in 150 steps", seed, len(grants))
				}
				checkBound(t, grants, tc.perSecond, tc.burst)
			})
		}
	}
}

func TestRateReachesItsBound(t *testing.T) {
	for _, burst := range []int{1, 3} {
		t.Run(fmt.Sprintf("burst %d", burst), func(t *testing.T) {
			clock := testclock.New()
			r := NewRate(10, burst, WithClock(clock))
			g := logGrants(r)
			drive(t, clock, r, 4, 40, 0, 1, func(*rand.Rand) time.Duration { return 100 * time.Millisecond })
			grants := g.used(nil)
			if want := burst + 40; len(grants) != want {
				t.Fatalf("%d grants in 4s at 10/s, burst %d; want %d", len(grants), burst, want)
			}
			for i, at := range grants {
				want := time.Duration(max(0, i-burst+1)) * 100 * time.Millisecond
				if time.Duration(at) != want {
					t.Fatalf("grant %d at %v, want %v", i, time.Duration(at), want)
				}
			}
		})
	}
}

// TestBucketRefundsKeepTheBound drives a bucket directly: grants whenever
// one is allowed, at random instants, and refunds of random outstanding
// grants, long after or at once. Bursts up to 60 make the refund stack
// merge entries.
func TestBucketRefundsKeepTheBound(t *testing.T) {
	for range 100 {
		seed := rand.Uint64()
		rnd := rand.New(rand.NewPCG(seed, 0))
		perSecond := []float64{0.2, 3, 10, 1000}[rnd.IntN(4)]
		burst := 1 + rnd.IntN(60)
		iv := int64(math.Ceil(1e9 / perSecond))
		b := bucket{interval: iv, burst: int64(burst)}
		times := map[uint64]int64{}
		refunded := map[uint64]bool{}
		var open []uint64
		now := int64(0)
		for range 1500 {
			switch rnd.IntN(6) {
			case 0:
				now += rnd.Int64N(3 * iv)
			case 1:
				now += iv / int64(1+rnd.IntN(burst))
			case 2, 3: // a little faster than the refill: the deficit grows
				now += iv - iv/10
			}
			if b.delay(now, 1) == 0 {
				seq := b.take(now)
				times[seq] = now
				open = append(open, seq)
			}
			if len(open) > 0 && rnd.IntN(4) == 0 {
				i := rnd.IntN(len(open))
				if b.refund(now, open[i]) {
					refunded[open[i]] = true
				}
				open = append(open[:i], open[i+1:]...)
			}
		}
		var grants []int64
		for seq := uint64(1); seq <= b.seq; seq++ {
			if !refunded[seq] {
				grants = append(grants, times[seq])
			}
		}
		t.Run(fmt.Sprintf("seed %d rate %v burst %d", seed, perSecond, burst), func(t *testing.T) {
			checkBound(t, grants, perSecond, burst)
		})
		if t.Failed() {
			return
		}
	}
}

// A rate just below 10⁹/15 needs 16 ns between tokens: 15 would run faster
// than the rate, a little beyond the bound over a long enough window.
// 10⁹ divided by it rounds to exactly 15 in float64.
func TestRateRoundsItsIntervalUpExactly(t *testing.T) {
	r := NewRate(6.6666666666666664e7, 1)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if r.b.interval != 16 {
		t.Errorf("interval = %d ns, want 16", r.b.interval)
	}
}

// TestBucketNeverHoldsMoreThanItsCountedGrantsAllow checks the bucket after
// every grant and refund against a replay of the grants that still count
// (those not given back): the bucket may lack more than the replay does,
// never less. A bucket that lacks no less lets only starts through that
// keep the bound with the grants that count. Refunds come in every order,
// of grants made in bursts and at the rate, so that the refund stack
// merges entries and shifts the deficits of later grants.
func TestBucketNeverHoldsMoreThanItsCountedGrantsAllow(t *testing.T) {
	for range 300 {
		seed := rand.Uint64()
		rnd := rand.New(rand.NewPCG(seed, 1))
		iv := int64(1000)
		burst := 1 + rnd.IntN(50)
		b := bucket{interval: iv, burst: int64(burst), tat: fullSince}
		times := map[uint64]int64{}
		counted := map[uint64]bool{}
		var open []uint64
		now := int64(0)
		replay := func() int64 {
			tat := int64(fullSince)
			for seq := uint64(1); seq <= b.seq; seq++ {
				if counted[seq] {
					tat = max(tat, times[seq]) + iv
				}
			}
			return tat
		}
		for step := range 600 {
			switch rnd.IntN(5) {
			case 0:
				now += rnd.Int64N(3 * iv)
			case 1:
				now += iv / int64(1+rnd.IntN(burst))
			}
			for n := rnd.IntN(burst + 1); n > 0 && b.delay(now, 1) == 0; n-- {
				seq := b.take(now)
				times[seq], counted[seq] = now, true
				open = append(open, seq)
			}
			for len(open) > 0 && rnd.IntN(3) == 0 {
				i := rnd.IntN(len(open))
				if b.refund(now, open[i]) {
					counted[open[i]] = false
				}
				open = append(open[:i], open[i+1:]...)
			}
			if got, want := max(b.tat, now), max(replay(), now); got < want {
				t.Fatalf("seed %d burst %d, step %d: the bucket is full from %d, the grants that count allow it only from %d", seed, burst, step, got, want)
			}
		}
	}
}

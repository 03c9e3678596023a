package throttle

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/internal/recycle"
	"github.com/trimeter-go/trimeter/internal/testclock"
)

// A Rate that recycles its permits (the one a trimeter run builds for
// itself) answers exactly as one that does not, through grants, permits
// done in any order with every status (tokens given back included), and
// pauses.
func TestRecyclingRateAnswersAsAPlainOne(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(20) {
		plainClock, pooledClock := testclock.New(), testclock.New()
		plain := NewRate(50, 8, WithClock(plainClock))
		pooled := NewRate(50, 8, WithClock(pooledClock))
		recycle.RatePermits(pooled)
		r := rand.New(rand.NewPCG(seed, seed))
		var plainHeld, pooledHeld []Permit
		for step := range 400 {
			switch op := r.IntN(10); {
			case op < 5: // try for a token
				p1, w1, err1 := plain.TryAcquire(ctx)
				p2, w2, err2 := pooled.TryAcquire(ctx)
				if (p1 == nil) != (p2 == nil) || w1 != w2 || err1 != err2 {
					t.Fatalf("seed %d step %d: TryAcquire = %v, %v, %v on the plain Rate, %v, %v, %v on the recycling one", seed, step, p1, w1, err1, p2, w2, err2)
				}
				if p1 != nil {
					plainHeld, pooledHeld = append(plainHeld, p1), append(pooledHeld, p2)
				}
			case op < 8 && len(plainHeld) > 0: // a permit is done
				i := r.IntN(len(plainHeld))
				o := Outcome{Status: Status(r.IntN(4)), Latency: time.Millisecond}
				if r.IntN(8) == 0 {
					o.Pause = time.Duration(r.IntN(200)) * time.Millisecond
				}
				plainHeld[i].Done(o)
				pooledHeld[i].Done(o)
				plainHeld = append(plainHeld[:i], plainHeld[i+1:]...)
				pooledHeld = append(pooledHeld[:i], pooledHeld[i+1:]...)
			default: // time passes
				d := time.Duration(r.IntN(40)) * time.Millisecond
				plainClock.Advance(d)
				pooledClock.Advance(d)
			}
			if d1, d2 := plain.Delay(1), pooled.Delay(1); d1 != d2 {
				t.Fatalf("seed %d step %d: Delay(1) = %v on the plain Rate, %v on the recycling one", seed, step, d1, d2)
			}
			if s1, s2 := plain.Stats(), pooled.Stats(); s1 != s2 {
				t.Fatalf("seed %d step %d: Stats = %+v on the plain Rate, %+v on the recycling one", seed, step, s1, s2)
			}
		}
	}
}

package throttle

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/internal/ownrate"
	"github.com/trimeter-go/trimeter/internal/testclock"
)

// A run's own Rate (the one a trimeter run builds for itself), which
// recycles its permits and keeps no counts, answers exactly as a plain one,
// through grants, permits done in any order with every status (tokens given
// back included), and pauses; its Stats stay at zero, where the plain one's
// count.
func TestARunsOwnRateAnswersAsAPlainOne(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(20) {
		plainClock, ownClock := testclock.New(), testclock.New()
		plain := NewRate(50, 8, WithClock(plainClock))
		own := NewRate(50, 8, WithClock(ownClock))
		ownrate.Mark(own)
		r := rand.New(rand.NewPCG(seed, seed))
		var plainHeld, ownHeld []Permit
		for step := range 400 {
			switch op := r.IntN(10); {
			case op < 5: // try for a token
				p1, w1, err1 := plain.TryAcquire(ctx)
				p2, w2, err2 := own.TryAcquire(ctx)
				if (p1 == nil) != (p2 == nil) || w1 != w2 || err1 != err2 {
					t.Fatalf("seed %d step %d: TryAcquire = %v, %v, %v on the plain Rate, %v, %v, %v on the run's own one", seed, step, p1, w1, err1, p2, w2, err2)
				}
				if p1 != nil {
					plainHeld, ownHeld = append(plainHeld, p1), append(ownHeld, p2)
				}
			case op < 8 && len(plainHeld) > 0: // a permit is done
				i := r.IntN(len(plainHeld))
				o := Outcome{Status: Status(r.IntN(4)), Latency: time.Millisecond}
				if r.IntN(8) == 0 {
					o.Pause = time.Duration(r.IntN(200)) * time.Millisecond
				}
				plainHeld[i].Done(o)
				ownHeld[i].Done(o)
				plainHeld = append(plainHeld[:i], plainHeld[i+1:]...)
				ownHeld = append(ownHeld[:i], ownHeld[i+1:]...)
			default: // time passes
				d := time.Duration(r.IntN(40)) * time.Millisecond
				plainClock.Advance(d)
				ownClock.Advance(d)
			}
			if d1, d2 := plain.Delay(1), own.Delay(1); d1 != d2 {
				t.Fatalf("seed %d step %d: Delay(1) = %v on the plain Rate, %v on the run's own one", seed, step, d1, d2)
			}
			if s := own.Stats(); s != (Stats{}) {
				t.Fatalf("seed %d step %d: Stats = %+v on the run's own Rate, want none", seed, step, s)
			}
		}
		if plain.Stats().Started == 0 {
			t.Fatalf("seed %d: the plain Rate counted no start: the comparison saw no grant", seed)
		}
	}
}

package throttle

import (
	"math/rand/v2"
	"testing"
)

// refunds never gives back more than the exact rule allows (the permit's
// interval, less the smallest deficit of every grant made after it), and
// gives back exactly that for the last maxLows grants, which the stack
// always tells apart.
func TestRefundsNeverGiveBackMoreThanAllowed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const interval = 1000
	for round := range 200 {
		var r refunds
		var deficits []int64 // deficits[s-1]: grant s's
		for seq := uint64(1); seq <= 300; seq++ {
			// A burst drains the bucket (growing deficits), with refills
			// now and then.
			d := int64(0)
			if n := len(deficits); n > 0 && rng.IntN(10) > 0 {
				d = deficits[n-1] + rng.Int64N(interval)
			}
			deficits = append(deficits, d)
			r.granted(seq, d)
		}
		for seq := uint64(1); seq <= 300; seq++ {
			exact := int64(interval)
			for _, d := range deficits[seq:] {
				exact = min(exact, d)
			}
			got := r.gap(seq, interval)
			if got > exact {
				t.Fatalf("round %d: grant %d may give back %d, more than the %d allowed", round, seq, got, exact)
			}
			if seq >= 300-maxLows && got != exact {
				t.Fatalf("round %d: recent grant %d may give back %d, want exactly %d", round, seq, got, exact)
			}
		}
	}
}

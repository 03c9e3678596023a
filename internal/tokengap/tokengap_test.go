package tokengap

import (
	"math"
	"math/big"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// exact returns ⌈10⁹/r⌉ in exact rational arithmetic.
func exact(r float64) float64 {
	q := new(big.Rat).Quo(big.NewRat(1e9, 1), new(big.Rat).SetFloat64(r))
	n := new(big.Int).Quo(q.Num(), q.Denom())
	if new(big.Rat).SetInt(n).Cmp(q) < 0 {
		n.Add(n, big.NewInt(1))
	}
	f, _ := new(big.Float).SetInt(n).Float64()
	return f
}

func TestOfIsTheExactCeiling(t *testing.T) {
	// Rates at and beside 10⁹/k are where a rounded quotient lands on
	// the wrong side of a whole number.
	var rates []float64
	for k := 1.0; k < 3e5; k += 3 {
		r := 1e9 / k
		rates = append(rates, math.Nextafter(r, 0), r, math.Nextafter(r, math.Inf(1)))
	}
	// And rates spread evenly in log scale from 10⁻⁶ to 10⁹ per second.
	x := uint64(88172645463325252)
	for range 100000 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		rates = append(rates, 1e-6*math.Pow(1e15, float64(x>>11)/(1<<53)))
	}
	wrong := 0
	for _, r := range rates {
		if got, want := Of(r), exact(r); got != want {
			if wrong++; wrong <= 5 {
				t.Errorf("Of(%v) = %v, want %v", r, got, want)
			}
		}
	}
	if wrong > 5 {
		t.Errorf("... and %d more", wrong-5)
	}
}

func TestOfMendsTheRoundedQuotient(t *testing.T) {
	// 10⁹ divided by this rate is just above 15, and rounds to 15.
	r := 6.6666666666666664e+07
	if naive := math.Ceil(1e9 / r); naive != 15 {
		t.Fatalf("math.Ceil(1e9/r) = %v; the case no longer shows the rounding", naive)
	}
	if got := Of(r); got != 16 {
		t.Errorf("Of(%v) = %v, want 16", r, got)
	}
}

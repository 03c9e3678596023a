// Package tokengap computes the time between the tokens of a rate, in
// whole nanoseconds rounded up, so that a bucket kept in nanoseconds never
// runs faster than its rate.
package tokengap

import "math"

// Of returns ⌈10⁹/perSecond⌉ exactly, as a float64 (which holds every
// whole number up to 2⁵³ exactly; past that, the caller's range check
// applies). perSecond must be positive and finite.
//
// The quotient 10⁹/perSecond is rounded to a float64 before math.Ceil
// sees it, so for some rates (many of those a step of a float64 away from
// 10⁹/k, such as 6.6666666666666664e7, next to 10⁹/15) it lands on the whole number just below
// the true quotient, and the ceiling comes out one too small. Each
// candidate is checked with a fused multiply-add, whose sign is exact:
// k·perSecond − 10⁹ is rounded once, and a rounding never turns a nonzero
// value of this size into zero or flips its sign.
func Of(perSecond float64) float64 {
	k := math.Ceil(1e9 / perSecond)
	switch {
	case math.FMA(k, perSecond, -1e9) < 0: // k·perSecond < 10⁹: too small
		k++
	case k > 1 && math.FMA(k-1, perSecond, -1e9) >= 0: // k−1 is enough
		k--
	}
	return k
}

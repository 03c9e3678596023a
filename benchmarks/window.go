package benchmarks

import "slices"

// WindowExcess returns by how many starts the schedule exceeds a token
// bucket of the given rate (per second) and burst, at worst: the largest
// value, over every window [starts[i], starts[j]], of the number of starts
// in it minus burst + rate·(starts[j] - starts[i]). It is 0 when the
// schedule keeps the bound. starts are nanoseconds from any origin, in any
// order; the slice is not changed.
func WindowExcess(starts []int64, rate float64, burst int) float64 {
	s := slices.Clone(starts)
	slices.Sort(s)
	// For a window from i to j the excess is
	// (j + 1 - rate·s[j]) + (rate·s[i] - i) - burst,
	// so one pass keeping the best rate·s[i] - i so far finds the largest.
	excess := 0.0
	best := 0.0
	for j, t := range s {
		tokens := rate * float64(t) / 1e9
		if j == 0 || tokens-float64(j) > best {
			best = tokens - float64(j)
		}
		excess = max(excess, float64(j+1)-tokens+best-float64(burst))
	}
	return excess
}

// AchievedRate returns the rate a schedule reached, as a percentage of
// target: the starts beyond the burst, divided by the time from the origin
// (0) to the last start. It is 0 when there are no more starts than burst.
func AchievedRate(starts []int64, target float64, burst int) float64 {
	if len(starts) <= burst {
		return 0
	}
	last := slices.Max(starts)
	if last <= 0 {
		return 0
	}
	perSecond := float64(len(starts)-burst) / (float64(last) / 1e9)
	return 100 * perSecond / target
}

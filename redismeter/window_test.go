package redismeter

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

// A grant is a token taken from Redis, seen from a client: the Redis call
// that took it was sent at Sent and its reply read at Got, both by the
// process's wall clock. Redis read its own clock (the same machine clock)
// in between.
type grant struct{ Sent, Got int64 } // unix nanoseconds

// checkWindows checks that no window holds more grants than burst + rate·t,
// with no tolerance: a grant counts in a window only when its whole
// [Sent, Got] interval lies inside, so that a reply's travel time never
// makes a window look shorter than it was. It returns the first window
// that breaks the bound, and the closest any window came to it: the most
// grants any window held beyond burst + rate·t (negative when all held
// fewer).
func checkWindows(gs []grant, burst int, rate float64) (closest float64, err error) {
	gs = slices.Clone(gs)
	slices.SortFunc(gs, func(a, b grant) int { return compare(a.Sent, b.Sent) })
	closest = math.Inf(-1)
	var ends []int64 // Got of gs[i:], sorted
	for i := len(gs) - 1; i >= 0; i-- {
		at, _ := slices.BinarySearch(ends, gs[i].Got)
		ends = slices.Insert(ends, at, gs[i].Got)
		for k, end := range ends {
			if end < gs[i].Sent {
				continue // a clock that went back; such a grant counts nowhere
			}
			t := time.Duration(end - gs[i].Sent).Seconds()
			if rate*t > float64(len(gs)) {
				break // no later window can hold too many
			}
			excess := float64(k+1) - float64(burst) - rate*t
			closest = max(closest, excess)
			if excess > 1e-9 {
				return closest, fmt.Errorf("%d grants within %v (from %d): bound is %d + %v/s·t = %.2f",
					k+1, time.Duration(end-gs[i].Sent), gs[i].Sent, burst, rate, float64(burst)+rate*t)
			}
		}
	}
	return closest, nil
}

func compare(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestCheckWindowsFindsAnExcess(t *testing.T) {
	ms := int64(time.Millisecond)
	// A steady 100/s with a burst of 2: starts 10 ms apart are within the bound.
	var steady []grant
	for i := range int64(50) {
		steady = append(steady, grant{Sent: i * 10 * ms, Got: i*10*ms + ms/10})
	}
	if _, err := checkWindows(steady, 2, 100); err != nil {
		t.Errorf("steady grants rejected: %v", err)
	}
	// Three grants within 5 ms break burst 2 at 100/s (2 + 0.5 = 2.5).
	tight := append(slices.Clone(steady), grant{Sent: 5 * ms, Got: 5*ms + ms/10}, grant{Sent: 6 * ms, Got: 6 * ms})
	if _, err := checkWindows(tight, 2, 100); err == nil {
		t.Error("three grants within 5 ms accepted under burst 2 at 100/s")
	}
	// The same three, but one reply took 40 ms: its interval spans too
	// long a window to prove anything.
	slow := append(slices.Clone(steady[:1]), grant{Sent: 5 * ms, Got: 45 * ms}, grant{Sent: 6 * ms, Got: 6 * ms})
	if _, err := checkWindows(slow, 2, 100); err != nil {
		t.Errorf("uncertain grants rejected: %v", err)
	}
}

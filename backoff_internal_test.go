package trimeter

import (
	"math"
	"testing"
	"time"
)

// The wait before attempt n+1 is between half and all of base·2^(n-1),
// capped at max, for any base and max, the largest durations included.
func TestBackoffWaitStaysInRange(t *testing.T) {
	cases := []struct {
		base, max time.Duration
	}{
		{100 * time.Millisecond, 10 * time.Second},
		{time.Nanosecond, time.Nanosecond},
		{3 * time.Second, 5 * time.Second},
		{math.MaxInt64 / 3 * 2, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64},
		{1, math.MaxInt64},
	}
	for _, c := range cases {
		b := backoff{base: c.base, max: c.max}
		want := c.base
		for n := 1; n <= 70; n++ {
			d := b.wait(n)
			if d < want/2 || d > want {
				t.Fatalf("Backoff(%v, %v): wait(%d) = %v, want it in [%v, %v]", c.base, c.max, n, d, want/2, want)
			}
			if want <= c.max/2 {
				want *= 2
			} else {
				want = c.max
			}
		}
	}
}

// Every wait from half of base·2^(n-1) to all of it can be drawn, the whole
// of an odd duration included.
func TestBackoffWaitReachesBothEnds(t *testing.T) {
	b := backoff{base: 3, max: 3}
	seen := map[time.Duration]bool{}
	for range 1000 {
		seen[b.wait(1)] = true
	}
	if len(seen) != 3 || !seen[1] || !seen[2] || !seen[3] {
		t.Errorf("Backoff(3ns, 3ns) drew %v, want 1ns, 2ns and 3ns", seen)
	}
}

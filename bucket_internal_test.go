package trimeter

import (
	"errors"
	"strings"
	"testing"

	"github.com/jonboulle/clockwork"
)

// The default bucket of MaxPerSecond: its burst (the b of b + rate·t) and
// how many tokens it grants from once the start margin is held back.
func TestDefaultBucket(t *testing.T) {
	real, fake := clockwork.NewRealClock(), clockwork.NewFakeClock()
	cases := []struct {
		name          string
		l             limits
		clock         clockwork.Clock
		burst, bucket int
	}{
		{"fake clock", limits{rate: 100_000}, fake, 1, 1},
		{"real clock, 300/s", limits{rate: 300}, real, 1, 1},
		{"real clock, 400/s", limits{rate: 400}, real, 2, 2},
		{"real clock, 999/s: below the margin's rates", limits{rate: 999}, real, 4, 4},
		{"real clock, 1,000/s", limits{rate: 1_000}, real, 5, 4},
		{"real clock, 10,000/s", limits{rate: 10_000}, real, 50, 48},
		{"real clock, 100,000/s", limits{rate: 100_000}, real, 500, 475},
		{"real clock, 1e300/s: sized as the 10⁹/s it runs at", limits{rate: 1e300}, real, 5_000_000, 4_750_000},
		{"MaxBurst(400) at 100,000/s", limits{rate: 100_000, burst: 400}, real, 400, 400},
		{"MaxBurst(1) at 100,000/s", limits{rate: 100_000, burst: 1}, real, 1, 1},
		{"MaxBurst(5) on a fake clock", limits{rate: 1_000, burst: 5}, fake, 5, 5},
	}
	for _, c := range cases {
		if got := c.l.burstSize(c.clock); got != c.burst {
			t.Errorf("%s: burst %d, want %d", c.name, got, c.burst)
		}
		if got := c.l.bucketSize(c.clock); got != c.bucket {
			t.Errorf("%s: bucket %d, want %d", c.name, got, c.bucket)
		}
		r, err := c.l.newRate(c.clock, "")
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := r.Burst(); got != c.bucket {
			t.Errorf("%s: the Rate's bucket is %d, want %d", c.name, got, c.bucket)
		}
	}
}

// A rate the bucket cannot keep is named alone when the burst is the
// default one, and with the burst the caller set otherwise.
func TestRateErrorNamesWhatWasSet(t *testing.T) {
	cases := []struct {
		l         limits
		want, not string
	}{
		{limits{rate: 1e-9}, "MaxPerSecond(1e-09): ", "MaxBurst"},
		{limits{rate: 1e-9, burst: 3}, "MaxPerSecond(1e-09) with MaxBurst(3): ", ""},
	}
	for _, c := range cases {
		_, err := c.l.newRate(clockwork.NewRealClock(), "")
		if !errors.Is(err, ErrBadOption) {
			t.Fatalf("%+v: error %v, want one wrapping ErrBadOption", c.l, err)
		}
		if msg := err.Error(); !strings.Contains(msg, c.want) || (c.not != "" && strings.Contains(msg, c.not)) {
			t.Errorf("%+v: error %q, want it to name %q and not %q", c.l, msg, c.want, c.not)
		}
	}
}

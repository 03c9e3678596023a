package demo

import "time"

// A RecentRate turns a growing count (a Monitor's Started, say) into a rate
// per second over about the last second. It is not safe for concurrent use.
type RecentRate struct {
	samples []sample
}

type sample struct {
	at time.Time
	n  int64
}

// Update records that the count was n at now and returns the rate since the
// newest earlier sample taken at least a second before now (or since the
// first sample, before a second has passed): zero on the first call.
func (r *RecentRate) Update(now time.Time, n int64) float64 {
	r.samples = append(r.samples, sample{now, n})
	for len(r.samples) > 2 && now.Sub(r.samples[1].at) >= time.Second {
		r.samples = r.samples[1:]
	}
	first := r.samples[0]
	d := now.Sub(first.at).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(n-first.n) / d
}

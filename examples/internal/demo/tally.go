package demo

import (
	"slices"
	"sync"
	"time"
)

// A Tally is what a test server counts to check its clients: the requests
// in progress and their peak, and when each request arrived. The zero
// Tally is ready to use; it is safe for concurrent use.
type Tally struct {
	mu       sync.Mutex
	inFlight int
	peak     int
	arrivals []time.Time
}

// Arrive records a request that arrived at now. It returns how many
// requests are in progress, this one included, and how many arrived in the
// window of length w that ends at now, this one included. Arrivals may be
// recorded out of order (their times read before the lock, say): they are
// kept sorted.
func (t *Tally) Arrive(now time.Time, w time.Duration) (inFlight, inWindow int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inFlight++
	t.peak = max(t.peak, t.inFlight)
	after, _ := slices.BinarySearchFunc(t.arrivals, now, func(a, now time.Time) int {
		if a.After(now) {
			return 1
		}
		return -1 // before now, or at it: now goes after
	})
	t.arrivals = slices.Insert(t.arrivals, after, now)
	for i := after; i >= 0 && now.Sub(t.arrivals[i]) < w; i-- {
		inWindow++
	}
	return t.inFlight, inWindow
}

// Leave records that a request is no longer in progress. A server calls it
// before it writes the response, so that a client cannot have seen the
// response while the request still counts as in progress.
func (t *Tally) Leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inFlight--
}

// Peak returns the largest number of requests that were in progress at once.
func (t *Tally) Peak() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.peak
}

// Requests returns how many requests arrived.
func (t *Tally) Requests() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.arrivals)
}

// Arrivals returns when each request arrived, in order of time.
func (t *Tally) Arrivals() []time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.arrivals)
}

// MaxInWindow returns the largest number of requests that arrived within
// any window of length w.
func (t *Tally) MaxInWindow(w time.Duration) int {
	return MaxInWindow(t.Arrivals(), w)
}

// MaxInWindow returns the largest number of the times ts that fall in one
// window [s, s+w), over every start s. ts need not be sorted.
func MaxInWindow(ts []time.Time, w time.Duration) int {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, time.Time.Compare)
	best, lo := 0, 0
	for hi := range ts {
		for lo <= hi && ts[hi].Sub(ts[lo]) >= w {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

package throttle

import (
	"math"
	"time"
)

// vegas learns a concurrency limit from finished attempts, in the manner
// of TCP Vegas (L. S. Brakmo and L. L. Peterson, "TCP Vegas: End to End
// Congestion Avoidance on a Global Internet", IEEE JSAC 13(8), 1995), as
// Netflix's concurrency-limits library applies it to requests
// (https://github.com/Netflix/concurrency-limits, VegasLimit).
//
// With a limit of L attempts at once, a latency of lat against the best
// latency seen, base, means that about q = L·(1 − base/lat) of them wait
// in a queue at the service rather than being served. Both latencies are
// smoothed (a moving average over some sixteen attempts), so that the
// jitter of single attempts neither passes for a queue nor lowers base
// below the service's usual time. The limit grows
// while q is below alpha and shrinks while q is above beta, by one attempt
// per round trip (1/L per finished attempt); at first it grows by one per
// attempt (doubling each round trip, as TCP's slow start) until a queue
// shows or a push-back comes (a failure does not end slow start: it shows
// no queue). A push-back halves the limit and a failure takes a tenth off, at
// most once for the attempts that were admitted before the last such cut
// (only a fresh attempt, admitted after it, cuts), so a burst of
// push-backs from one round trip cuts once. The caller says what is fresh:
// for a push-back, an attempt admitted after the last push-back's cut
// (a failure's tenth does not answer a push-back); for a failure, after
// the last cut of either kind. Cancelled and unused attempts
// teach nothing. While fewer than half the limit are in
// flight the limit is not what holds the work back, and latencies then
// only update the latency estimates (base and the smoothed latency), not
// the limit.
//
// base is the smallest smoothed latency seen; after a push-back cut the
// first latency of an attempt admitted after the cut starts both afresh,
// so that a service that became slower for good is measured anew.
type vegas struct {
	min, max float64
	lo, hi   int // min and max as given: current stays between them
	limit    float64
	lat      float64 // smoothed latency, in nanoseconds
	base     float64 // smallest smoothed latency seen
	rebase   bool
	slow     bool
}

// smoothing is the weight of one latency in the smoothed latency: a
// single slow or lucky attempt moves it by a sixteenth.
const smoothing = 1.0 / 16

func newVegas(min, max int) vegas {
	return vegas{min: float64(min), max: float64(max), lo: min, hi: max, limit: float64(min), slow: true}
}

// current is the limit in force: the learned value, rounded down, and
// between min and max however a float64 rounds them (an int above 2⁵³ is
// not a float64, and float64(math.MaxInt) is past every int).
func (v *vegas) current() int {
	if v.limit >= float64(math.MaxInt) {
		return v.hi
	}
	return min(max(int(v.limit), v.lo), v.hi)
}

// learn takes the outcome of an attempt, fresh when it was admitted after
// the last cut, that ran beside inFlight attempts at most (itself
// included). It reports whether it cut the limit: the attempts admitted
// until then are no longer fresh.
func (v *vegas) learn(o Outcome, fresh bool, inFlight int) (cut bool) {
	switch o.Status {
	case PushedBack:
		if v.cut(fresh, 0.5) {
			v.slow, v.rebase = false, true
			return true
		}
	case Failed:
		// A failure shows no queue (a 404 says nothing of the load): it
		// trims the limit, and slow start goes on.
		return v.cut(fresh, 0.9)
	case Succeeded:
		v.sample(o.Latency, fresh, inFlight)
	}
	return false
}

// cut lowers the limit by factor for a fresh attempt, and reports whether
// it did: not for one admitted before the last cut, which already answered
// it.
func (v *vegas) cut(fresh bool, factor float64) bool {
	if !fresh {
		return false
	}
	v.set(v.limit * factor)
	return true
}

func (v *vegas) sample(lat time.Duration, fresh bool, inFlight int) {
	if lat <= 0 {
		return
	}
	if v.lat == 0 || (v.rebase && fresh) {
		v.lat, v.base, v.rebase = float64(lat), float64(lat), false
	}
	v.lat += (float64(lat) - v.lat) * smoothing
	v.base = min(v.base, v.lat)
	if float64(inFlight)*2 < v.limit {
		return
	}
	q := v.limit * (1 - v.base/v.lat)
	alpha := 1 + v.limit/16
	beta := 2 * alpha
	switch {
	case q < alpha && v.slow:
		v.set(v.limit + 1)
	case q < alpha:
		v.set(v.limit + 1/v.limit)
	case q > beta:
		v.slow = false
		v.set(v.limit - 1/v.limit)
	default:
		v.slow = false
	}
}

func (v *vegas) set(limit float64) {
	v.limit = min(max(limit, v.min), v.max)
}

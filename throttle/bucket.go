package throttle

import (
	"math"

	"github.com/trimeter-go/trimeter/internal/tokengap"
)

// bucket is a token bucket kept as a theoretical arrival time (the
// generic cell rate algorithm): the bucket is full from tat on, and before
// that it lacks (tat-now)/interval tokens. Times are integer nanoseconds
// and interval is rounded up, so rounding can only slow the bucket down,
// never let an extra start through. A grant at now is allowed when the
// bucket holds a token; it moves tat one interval on from max(tat, now).
//
// Bound: after a grant at g, tat ≥ g + interval, and each later grant adds
// an interval; so a k-th grant at g' needs g + k·interval − g' ≤
// burst·interval, that is, k ≤ burst + rate·(g'−g).
type bucket struct {
	interval int64 // nanoseconds per token
	burst    int64
	tat      int64  // fullSince in a new bucket
	seq      uint64 // grants made so far
	refunds  refunds
}

// fullSince is the tat of a new bucket: full since long before any time a
// clock set back past the meter's start could read.
const fullSince = math.MinInt64 / 2

// Limits on a bucket's size, so that its arithmetic cannot overflow.
const (
	maxInterval = 1 << 50 // 13.03 days per token
	maxSpan     = 1 << 60 // burst·interval: 36.5 years
)

// deficit is what the bucket lacks at now, in nanoseconds of refill.
func (b *bucket) deficit(now int64) int64 { return max(b.tat, now) - now }

func (b *bucket) delay(now int64, k int) int64 {
	need := satMul(int64(k)-b.burst, b.interval)
	return max(0, b.deficit(now)+need)
}

func (b *bucket) slack() int64 { return (b.burst - 1) * b.interval }

func (b *bucket) take(now int64) uint64 {
	b.seq++
	b.refunds.granted(b.seq, b.deficit(now))
	b.tat = max(b.tat, now) + b.interval
	return b.seq
}

// refund gives back what it safely can of grant seq's token and reports
// whether anything came back.
func (b *bucket) refund(now int64, seq uint64) bool {
	g := min(b.refunds.gap(seq, b.interval), b.deficit(now))
	if g <= 0 {
		return false
	}
	b.tat = max(b.tat, now) - g
	b.refunds.refunded(seq, g)
	return true
}

// setInterval changes the rate, keeping the tokens in the bucket.
func (b *bucket) setInterval(now, interval int64) {
	if interval == b.interval {
		return // the permits granted so far may still give their tokens back
	}
	// The deficit is at most burst·interval but on a clock set back
	// meanwhile; scaled, it saturates as satMul does.
	d := float64(b.deficit(now)) * float64(interval) / float64(b.interval)
	b.tat = now + int64(min(math.Ceil(d), 1<<61))
	b.interval = interval
	b.refunds.reset(b.seq)
}

// setBurst changes the bucket's size, keeping the tokens in it (at most
// the new size).
func (b *bucket) setBurst(now, burst int64) {
	if burst == b.burst {
		return
	}
	d := b.deficit(now) + (burst-b.burst)*b.interval
	b.tat = now + max(d, 0)
	b.burst = burst
	b.refunds.reset(b.seq)
}

// satMul multiplies, saturating well below overflow.
func satMul(a, b int64) int64 {
	const lim = 1 << 61
	if a == 0 || b == 0 {
		return 0
	}
	if p := a * b; p/b == a && p < lim && p > -lim {
		return p
	}
	if (a < 0) != (b < 0) {
		return -lim
	}
	return lim
}

// interval converts a rate into nanoseconds per token, rounded up; ok is
// false when the rate is not positive and finite or is too slow.
func toInterval(perSecond float64) (int64, string) {
	if !(perSecond > 0) || math.IsInf(perSecond, 0) {
		return 0, "must be positive and finite"
	}
	iv := tokengap.Of(perSecond)
	if iv > maxInterval {
		return 0, "is below the slowest rate, one token per 2⁵⁰ ns (13.03 days)"
	}
	return max(int64(iv), 1), ""
}

// checkSpan reports why a bucket of burst tokens at interval cannot be.
func checkSpan(burst int, interval int64) string {
	if burst < 1 {
		return "burst must be at least 1"
	}
	if int64(burst) > maxSpan/interval {
		return "burst is too large for this rate"
	}
	return ""
}

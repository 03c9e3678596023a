// Package unixnano keeps an instant as Unix nanoseconds in an
// atomic.Int64, the form of an "until" that is read without a lock.
package unixnano

import (
	"math"
	"sync/atomic"
	"time"
)

// last is the last instant whose Unix nanoseconds fit in an int64, in the
// year 2262.
var last = time.Unix(0, math.MaxInt64)

// Of returns t's Unix nanoseconds, or those of the last instant they
// reach for a t past it.
func Of(t time.Time) int64 {
	if t.After(last) {
		return math.MaxInt64
	}
	return t.UnixNano()
}

// Raise sets v to Of(t), unless v holds a later instant already.
func Raise(v *atomic.Int64, t time.Time) {
	n := Of(t)
	for {
		cur := v.Load()
		if cur >= n || v.CompareAndSwap(cur, n) {
			return
		}
	}
}

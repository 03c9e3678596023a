// Package latest keeps an instant that only moves later, read and raised
// from any goroutine without a lock: the end of a pause, say, that a
// shorter pause must not shorten.
package latest

import (
	"sync/atomic"
	"time"
)

// Time is an instant that only moves later. The zero Time holds none.
// It keeps the time.Time it is given, so any instant works, before 1970
// or after 2262 as well as now.
type Time struct {
	p atomic.Pointer[time.Time]
}

// Raise sets t unless a later instant is held already.
func (l *Time) Raise(t time.Time) {
	for {
		cur := l.p.Load()
		if cur != nil && !cur.Before(t) {
			return
		}
		if l.p.CompareAndSwap(cur, &t) {
			return
		}
	}
}

// Load returns the instant held, and whether there is one.
func (l *Time) Load() (time.Time, bool) {
	if p := l.p.Load(); p != nil {
		return *p, true
	}
	return time.Time{}, false
}

// Clear drops the instant held.
func (l *Time) Clear() { l.p.Store(nil) }

// ClearIf drops the instant held if it is t, and leaves a later one.
func (l *Time) ClearIf(t time.Time) {
	if p := l.p.Load(); p != nil && p.Equal(t) {
		l.p.CompareAndSwap(p, nil)
	}
}

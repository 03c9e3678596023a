// Package timing sets timers on clocks that may move while a timer is
// being set.
//
// A timer counts its duration from the moment it is set, and code works
// that duration out from a reading of the clock taken a little before. On
// the real clock the two moments are nanoseconds apart. A fake clock that
// a test steps between them, though, makes the timer fire a whole step
// late, or never, if the test waits for the timer before it steps again.
// A clock that wraps the real one, to log or count its readings, moves a
// little between any two readings, so code that waits until two readings
// agree never gets to sleep.
//
// It also keeps count of the timers that call a function (Funcs), so that
// their owner can wait for a call that began just before its timer was
// stopped, which no Stop can reach.
package timing

import (
	"time"

	"github.com/jonboulle/clockwork"
)

// maxResets bounds how many times Settle sets a timer again. A clock that
// moves on every reading stops it there, with the timer late by no more
// than the last movement; a test that steps a fake clock once (or a few
// times) while the timer was set is caught on the reading after.
const maxResets = 3

// Settle makes t, a timer of clock that was just set for d from the
// reading from, fire when clock reaches from+d, although clock may have
// moved between that reading and the setting of t. It reads the clock and
// sets t again for what is left of d until a reading agrees with the one t
// was set from, at most maxResets times. It returns false when from+d has
// come already, with t stopped or fired. A timer that fired after a
// reading is not set again from that reading: it was due (set for what
// was left from an earlier reading, it cannot fire early), and set again
// it would fire a second time, after from+d.
func Settle(clock clockwork.Clock, t clockwork.Timer, from time.Time, d time.Duration) bool {
	set := from // the reading t was last set from
	for range maxResets {
		now := clock.Now()
		if now.Equal(set) {
			return true
		}
		left := d - now.Sub(from)
		if left <= 0 {
			t.Stop()
			return false
		}
		if !t.Stop() {
			return false // it fired since the reading
		}
		t.Reset(left)
		set = now
	}
	return true
}

package testclock

import (
	"sync/atomic"
	"time"
)

// Creeping is a Clock that moves forward by Step every time it is read,
// as a clock that wraps the real one (to log or count its readings) moves
// between any two readings. Its timers are those of the fake clock, and
// they fire when a reading or an Advance takes it past their time. It
// counts its readings, so that a test can tell a waiter that sleeps from
// one that keeps reading the clock.
type Creeping struct {
	*Clock
	Step  time.Duration // how far each reading moves the clock
	reads atomic.Int64
}

// NewCreeping returns a Creeping clock at Start that moves by step on
// every reading.
func NewCreeping(step time.Duration) *Creeping {
	return &Creeping{Clock: New(), Step: step}
}

// Now moves the clock forward by Step and returns the new time.
func (c *Creeping) Now() time.Time {
	c.reads.Add(1)
	c.Advance(c.Step)
	return c.Clock.Now()
}

// Since returns the time elapsed since t, reading the clock once.
func (c *Creeping) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// Until returns the time left until t, reading the clock once.
func (c *Creeping) Until(t time.Time) time.Duration { return t.Sub(c.Now()) }

// Reads returns how many times the clock has been read through Now, Since
// and Until.
func (c *Creeping) Reads() int64 { return c.reads.Load() }

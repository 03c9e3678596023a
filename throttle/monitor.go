package throttle

import (
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/trimeter-go/trimeter/internal/latest"
	"github.com/trimeter-go/trimeter/internal/nils"
)

// Stats is a snapshot of what a run or a meter has done so far. Once a run
// is over, Finished - Retried is the number of tasks it ran.
type Stats struct {
	Started  int64 // attempts started (a retry is a new start)
	Finished int64 // attempts that ended, whatever their status
	Failed   int64 // attempts that failed or were pushed back (not those cancelled by the run)
	Retried  int64 // attempts that were retries of an earlier one
	InFlight int64 // attempts running now
	// Waiting counts the tasks waiting for a permit now: for a run, the
	// inputs pulled and set aside for their keys (and, in a stage of a
	// pipeline, an error of the stage before that waits behind them) and
	// the attempts waiting for a meter; for a meter, the callers blocked
	// in Acquire.
	Waiting int64
	// Limit is the concurrency limit in force, or zero where there is none.
	Limit int64
	// PausedUntil is the end of the push-back pause in force, or the zero
	// time when none is.
	PausedUntil time.Time
	// Rate is the achieved rate: Started divided by the time since the
	// first start, in starts per second. Take two snapshots and divide the
	// difference of Started by the time between them for a recent rate.
	Rate float64
}

// A Watcher reports its Stats. Every meter in this package is one, and so
// is a [Monitor].
type Watcher interface {
	Stats() Stats
}

// A Monitor counts what a run does while it works; pass one to
// trimeter.Watch and read it from any goroutine with Stats. Meters keep one
// each. Counting costs a few atomic additions per attempt.
//
// The zero Monitor is ready to use and reads the real clock; NewMonitor
// gives one that reads another clock (for the Rate figure and pauses).
type Monitor struct {
	clock    clockwork.Clock
	first    atomic.Pointer[time.Time] // when the first start was, nil before it
	started  atomic.Int64
	finished atomic.Int64
	failed   atomic.Int64
	retried  atomic.Int64
	inFlight atomic.Int64
	waiting  atomic.Int64
	limit    atomic.Int64
	pause    latest.Time // the end of the pause in force, if any
}

// NewMonitor returns a Monitor that reads clock. A nil clock, or a nil
// pointer in the interface, reads the real clock, as the zero Monitor does.
func NewMonitor(clock clockwork.Clock) *Monitor {
	if nils.Is(clock) {
		clock = nil
	}
	return &Monitor{clock: clock}
}

func (m *Monitor) now() time.Time {
	if m.clock == nil {
		return time.Now()
	}
	return m.clock.Now()
}

// Start records that an attempt started; retry says whether it repeats an
// earlier attempt of the same task.
func (m *Monitor) Start(retry bool) {
	if m.first.Load() == nil {
		now := m.now()
		m.first.CompareAndSwap(nil, &now)
	}
	m.started.Add(1)
	m.inFlight.Add(1)
	if retry {
		m.retried.Add(1)
	}
}

// Finish records that an attempt ended; failed says whether with an error.
func (m *Monitor) Finish(failed bool) {
	m.inFlight.Add(-1)
	m.finished.Add(1)
	if failed {
		m.failed.Add(1)
	}
}

// Unstart takes back a Start whose attempt never ran: a permit given back
// with status Unused.
func (m *Monitor) Unstart() {
	m.started.Add(-1)
	m.inFlight.Add(-1)
}

// Wait adds delta (1 or -1) to the number of tasks waiting for a permit.
func (m *Monitor) Wait(delta int64) { m.waiting.Add(delta) }

// SetLimit records the concurrency limit in force.
func (m *Monitor) SetLimit(n int64) { m.limit.Store(n) }

// SetPause records the end of a pause in force. A shorter pause never
// shortens a longer one recorded, so a monitor that watches several calls
// or meters shows the longest; the zero time clears it. Any instant
// works, on a clock set before 1970 too.
func (m *Monitor) SetPause(until time.Time) {
	if until.IsZero() {
		m.pause.Clear()
		return
	}
	m.pause.Raise(until)
}

// EndPause drops the pause recorded if it ends at until, as a call or a
// meter whose pause that was does once it no longer holds anything off
// (trimeter's calls, when they end); a longer pause recorded since stays.
// The monitor keeps one instant, the longest: a shorter pause of another
// call or meter, still in force, shows again only once that one records
// it anew.
func (m *Monitor) EndPause(until time.Time) {
	if !until.IsZero() {
		m.pause.ClearIf(until)
	}
}

// Stats returns a snapshot of the counts. The figures are read one by one,
// so a snapshot taken while work runs may be off by the attempts that moved
// in between.
func (m *Monitor) Stats() Stats {
	s := Stats{
		Started:  m.started.Load(),
		Finished: m.finished.Load(),
		Failed:   m.failed.Load(),
		Retried:  m.retried.Load(),
		InFlight: m.inFlight.Load(),
		Waiting:  m.waiting.Load(),
		Limit:    m.limit.Load(),
	}
	now := m.now()
	if p, ok := m.pause.Load(); ok && p.After(now) {
		s.PausedUntil = p
	}
	if first := m.first.Load(); first != nil {
		if d := now.Sub(*first).Seconds(); d > 0 {
			s.Rate = float64(s.Started) / d
		}
	}
	return s
}

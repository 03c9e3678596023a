package timing

import (
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// Funcs sets timers that call a function in a goroutine of their own, as
// clockwork's AfterFunc does, and keeps count of them, so that their owner
// can wait for a call that began just before its timer was stopped: such a
// call is out of reach of Stop, which reports only that it came too late.
// The zero value is ready to use.
type Funcs struct {
	mu   sync.Mutex
	out  int       // timers set, and calls begun and not yet returned
	idle sync.Cond // signalled when out falls to 0
}

// AfterFunc sets a timer of clock that calls f in its own goroutine once d
// has passed. The timer's Stop and Reset keep the count, and report what
// clockwork's do: Stop, whether it kept f from being called; Reset, whether
// the timer was set before. Chan returns nil.
func (g *Funcs) AfterFunc(clock clockwork.Clock, d time.Duration, f func()) clockwork.Timer {
	g.mu.Lock()
	g.out++ // before f can be called, and return
	g.mu.Unlock()
	set := false
	defer func() {
		if !set { // clock.AfterFunc panicked: no timer
			g.done()
		}
	}()
	t := clock.AfterFunc(d, func() {
		defer g.done()
		f()
	})
	set = true
	return &funcTimer{g: g, t: t}
}

// Wait returns once every timer that g set has been stopped, or has fired
// and its call has returned. A timer still set holds it up until it
// fires: the caller stops them all first.
func (g *Funcs) Wait() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.out > 0 {
		g.cond().Wait()
	}
}

// done counts off a timer that was stopped or a call that returned.
func (g *Funcs) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.out--
	if g.out <= 0 { // below 0 only after a Stop that panicked and a call after all
		g.cond().Broadcast()
	}
}

// cond returns idle, ready for use; g.mu is held.
func (g *Funcs) cond() *sync.Cond {
	if g.idle.L == nil {
		g.idle.L = &g.mu
	}
	return &g.idle
}

// funcTimer is a timer that Funcs set.
type funcTimer struct {
	g *Funcs
	t clockwork.Timer
}

func (ft *funcTimer) Chan() <-chan time.Time { return ft.t.Chan() }

// Stop stops the timer. When that keeps f from being called, the timer is
// counted off; otherwise f has been called, and counts until it returns
// (or the timer had been stopped already). A Stop that panics (a broken
// clock) counts the timer off too, so that Wait cannot wait for ever on a
// timer whose state is unknown: should it fire after all, its call may
// still be under way when Wait returns.
func (ft *funcTimer) Stop() (stopped bool) {
	panicked := true
	defer func() {
		if stopped || panicked {
			ft.g.done()
		}
	}()
	stopped = ft.t.Stop()
	panicked = false
	return stopped
}

// Reset sets the timer again. A timer that was not set (stopped, or fired)
// counts again: its call, if one began, still counts on its own.
func (ft *funcTimer) Reset(d time.Duration) bool {
	ft.g.mu.Lock()
	defer ft.g.mu.Unlock()
	if ft.t.Reset(d) {
		return true
	}
	ft.g.out++
	return false
}

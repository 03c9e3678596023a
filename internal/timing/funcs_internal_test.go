package timing

import (
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/trimeter-go/trimeter/internal/testclock"
)

// pending returns how many timers and calls g counts.
func (g *Funcs) pending() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.out
}

func TestFuncsCountTimersSetAndCallsUnderWay(t *testing.T) {
	clk := testclock.New()
	var g Funcs
	release := make(chan struct{})
	returned := make(chan struct{})
	started := make(chan struct{})
	tm := g.AfterFunc(clk, time.Second, func() {
		close(started)
		<-release
	})
	if n := g.pending(); n != 1 {
		t.Fatalf("set: %d counted, want 1", n)
	}
	if !tm.Stop() {
		t.Fatal("Stop of a timer set = false")
	}
	if n := g.pending(); n != 0 {
		t.Fatalf("stopped: %d counted, want 0", n)
	}
	g.Wait() // nothing to wait for
	if tm.Reset(time.Second) {
		t.Fatal("Reset of a stopped timer = true")
	}
	if n := g.pending(); n != 1 {
		t.Fatalf("set again: %d counted, want 1", n)
	}
	if !tm.Reset(2 * time.Second) {
		t.Fatal("Reset of a timer set = false")
	}
	if n := g.pending(); n != 1 {
		t.Fatalf("set again while set: %d counted, want 1", n)
	}

	// It fires; its call waits for release.
	clk.Advance(2 * time.Second)
	<-started
	if tm.Stop() {
		t.Fatal("Stop of a timer that fired = true")
	}
	if n := g.pending(); n != 1 {
		t.Fatalf("fired, call under way: %d counted, want 1", n)
	}
	if tm.Reset(time.Second) {
		t.Fatal("Reset of a timer that fired = true")
	}
	if n := g.pending(); n != 2 {
		t.Fatalf("set again, call under way: %d counted, want 2", n)
	}
	if !tm.Stop() {
		t.Fatal("Stop of a timer set again = false")
	}
	go func() {
		defer close(returned)
		g.Wait()
	}()
	close(release)
	<-returned
	if n := g.pending(); n != 0 {
		t.Fatalf("after Wait: %d counted, want 0", n)
	}
}

// A Stop that panics leaves the timer's state unknown: it is counted off,
// so that Wait does not wait for ever on a timer that may never fire.
func TestFuncsCountOffATimerWhoseStopPanics(t *testing.T) {
	clk := &stopPanicClock{Clock: testclock.New()}
	var g Funcs
	tm := g.AfterFunc(clk, time.Hour, func() {})
	func() {
		defer func() {
			if r := recover(); r != "no stop today" {
				t.Fatalf("Stop panicked with %v, want the clock's panic", r)
			}
		}()
		tm.Stop()
	}()
	if n := g.pending(); n != 0 {
		t.Fatalf("after a Stop that panicked: %d counted, want 0", n)
	}
	g.Wait()
}

// A clock whose AfterFunc panics sets no timer, and g counts none.
func TestFuncsCountNoTimerWhenTheClockPanics(t *testing.T) {
	clk := &stopPanicClock{Clock: testclock.New(), noTimer: true}
	var g Funcs
	func() {
		defer func() {
			if r := recover(); r != "no timer today" {
				t.Fatalf("AfterFunc panicked with %v, want the clock's panic", r)
			}
		}()
		g.AfterFunc(clk, time.Hour, func() {})
	}()
	if n := g.pending(); n != 0 {
		t.Fatalf("after an AfterFunc that panicked: %d counted, want 0", n)
	}
	g.Wait()
}

// stopPanicClock is a fake clock whose timers that call a function panic
// when stopped (they are stopped first), or, with noTimer, whose AfterFunc
// panics.
type stopPanicClock struct {
	*testclock.Clock
	noTimer bool
}

func (c *stopPanicClock) AfterFunc(d time.Duration, f func()) clockwork.Timer {
	if c.noTimer {
		panic("no timer today")
	}
	return stopPanicTimer{c.Clock.AfterFunc(d, f)}
}

type stopPanicTimer struct{ clockwork.Timer }

func (t stopPanicTimer) Stop() bool {
	t.Timer.Stop()
	panic("no stop today")
}

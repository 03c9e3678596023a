package timing

import (
	"testing"
	"time"

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

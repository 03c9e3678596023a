package trimeter

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/internal/testclock"
)

// gatedLocker is the Locker of a sync.Cond whose waiters, once woken, are
// counted and then held until the gate opens: sync.Cond.Wait locks its
// Locker again once it is woken, and only then.
type gatedLocker struct {
	mu    *sync.Mutex
	woken atomic.Int32
	gate  chan struct{}
}

func (l *gatedLocker) Lock() {
	l.woken.Add(1)
	<-l.gate
	l.mu.Lock()
}

func (l *gatedLocker) Unlock() { l.mu.Unlock() }

// A starter whose task is quick hands the turn on and takes it back before
// the worker woken for it has looked; handing it on again then wakes no
// second worker, which would only find the turn taken. The one woken sees
// the turn as it is when it looks, so no hand-over is lost: once they
// look, the two waiters take the turn in turn and return.
func TestTurnHandedOnAgainWakesNoSecondWorker(t *testing.T) {
	e := &engine[int, int]{}
	waiters := &gatedLocker{mu: &e.mu, gate: make(chan struct{})}
	e.turn.L = waiters
	e.starting = true // the test is the starter
	var done sync.WaitGroup
	for range 2 {
		done.Add(1)
		go func() {
			defer done.Done()
			e.takeTurn()
			e.passTurn()
		}()
	}
	within(t, "two workers wait for the turn", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.turnWaits == 2
	})

	e.passTurn()
	e.takeTurn() // the worker woken has not looked: the turn is free
	e.passTurn()
	e.takeTurn()
	within(t, "a worker is woken", func() bool { return waiters.woken.Load() > 0 })
	testclock.AwaitIdle(context.Background(), 5*time.Second) // for a second one to show up
	if n := waiters.woken.Load(); n != 1 {
		t.Errorf("handing the turn on twice, then taking it back, woke %d workers; want 1", n)
	}

	close(waiters.gate)
	e.passTurn()
	done.Wait()
}

// within waits, yielding, until cond holds, and fails the test if it does
// not within ten seconds.
func within(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not so after 10s: %s", what)
		}
		testclock.Yield()
	}
}

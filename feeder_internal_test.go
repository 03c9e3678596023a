package trimeter

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/internal/testclock"
)

// An input the feeder queued before a push-back's pause began does not
// start until the pause ends. Left to the scheduler, such an input is
// queued only for the moment a summoned worker takes to be scheduled, so
// the test puts it in the queue itself, with the pause in force, and
// hands it to a worker.
func TestQueuedInputWaitsOutAPause(t *testing.T) {
	clock := testclock.New()
	var calls atomic.Int32
	var startedAt atomic.Int64
	fn := func(context.Context, int) (struct{}, error) {
		calls.Add(1)
		startedAt.Store(int64(clock.Elapsed()))
		return struct{}{}, nil
	}
	cfg := newConfig([]Option{MaxAtOnce(2), KeepGoing(), WithClock(clock)})
	e, err := newEngine(context.Background(), fn, nil, cfg, discard)
	if err != nil {
		t.Fatal(err)
	}
	if !e.fed {
		t.Fatal("MaxAtOnce(2) alone does not take the feeder's path")
	}
	e.begin(plainInputs(func(func(int) bool) {}))
	defer e.shutdown()

	e.mu.Lock()
	e.pausedUntil = clock.Now().Add(time.Hour)
	e.open++ // the input's slot, as the feeder takes it
	e.running++
	e.tasks.push(queued[int]{value: 1})
	e.pulledAll = true // so the worker returns once the queue is empty
	e.workers++
	e.awake++
	e.goRun(e.runQueued)
	e.mu.Unlock()

	clock.WaitFor(t, 1) // the worker waits for the pause to end
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d calls during the pause, want none", n)
	}
	clock.Advance(time.Hour)
	e.wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d calls, want 1", n)
	}
	if at := time.Duration(startedAt.Load()); at < time.Hour {
		t.Errorf("the input started %v into the run, during the pause of 1h", at)
	}
}

// With no MaxAtOnce the feeder's queue is the only bound on the inputs
// pulled ahead of the workers: the feeder has room for the next input
// while fewer than unboundedQueue wait there, and none once that many do.
// (Left to the scheduler, summoned workers drain the queue as it fills, so
// the test fills it itself.)
func TestAnUnlimitedFeederWaitsWhileItsQueueIsFull(t *testing.T) {
	fn := func(context.Context, int) (struct{}, error) { return struct{}{}, nil }
	e, err := newEngine(context.Background(), fn, nil, newConfig(nil), discard)
	if err != nil {
		t.Fatal(err)
	}
	if !e.fed {
		t.Fatal("a run with no options does not take the feeder's path")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range unboundedQueue {
		if !e.hasRoom() {
			t.Fatalf("no room for the next input with %d queued, want room below %d", i, unboundedQueue)
		}
		e.tasks.push(queued[int]{index: i, value: i})
	}
	if e.hasRoom() {
		t.Fatalf("room for the next input with %d queued, want none", unboundedQueue)
	}
	e.tasks.pop()
	if !e.hasRoom() {
		t.Fatalf("no room for the next input once a worker took one of %d", unboundedQueue)
	}
}

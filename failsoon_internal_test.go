package trimeter

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// A task's error under fail-fast stops the run before its worker takes mu
// (failSoon): a worker that goes on takes no queued input, and the error
// of a call that the failure cancelled, recorded first, is not the run's.
// Left to the scheduler, the gap between fn's return and its worker taking
// mu is too short to test, so the test makes it as long as it likes.
func TestAFailureStopsTheRunBeforeItsWorkerTakesTheLock(t *testing.T) {
	var calls atomic.Int32
	fn := func(context.Context, int) (struct{}, error) {
		calls.Add(1)
		return struct{}{}, nil
	}
	cfg := newConfig([]Option{MaxAtOnce(4)})
	e, err := newEngine(context.Background(), fn, nil, cfg, discard)
	if err != nil {
		t.Fatal(err)
	}
	e.begin(func(func(int, error) bool) {})
	defer e.shutdown()

	boom := errors.New("boom")
	e.failSoon(boom) // a task returned boom; its worker has not taken mu yet
	if e.ctx.Err() == nil {
		t.Fatal("the calls in flight were not cancelled")
	}

	e.mu.Lock()
	// A call cancelled by the failure ends first.
	e.open++
	e.running++
	e.finishLocked(task[int]{index: 1}, struct{}{}, context.Canceled)
	// An input queued meanwhile, and a worker free to take it.
	e.open++
	e.running++
	e.tasks.push(task[int]{index: 2, value: 2})
	e.pulledAll = true
	e.workers++
	e.awake++
	e.goRun(e.runQueued)
	e.mu.Unlock()
	e.wg.Wait()

	if n := calls.Load(); n != 0 {
		t.Errorf("%d calls started after the failure, want none", n)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !errors.Is(e.err, boom) {
		t.Errorf("the run's error is %v, want boom", e.err)
	}
}

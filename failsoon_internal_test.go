package trimeter

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/internal/testclock"
	"github.com/trimeter-go/trimeter/throttle"
)

// A task's error under fail-fast stops the run before its worker takes mu
// (failSoon). Left to the scheduler, the gap between fn's return and its
// worker taking mu is too short to test, so these tests make it as long as
// they like.

// failFastEngine returns a fed run, begun, whose fn counts its calls.
func failFastEngine(t *testing.T, calls *atomic.Int32) *engine[int, struct{}] {
	t.Helper()
	fn := func(context.Context, int) (struct{}, error) {
		calls.Add(1)
		return struct{}{}, nil
	}
	e, err := newEngine(context.Background(), fn, nil, newConfig([]Option{MaxAtOnce(4)}), discard)
	if err != nil {
		t.Fatal(err)
	}
	e.begin(plainInputs(func(func(int) bool) {}))
	return e
}

// A worker that goes on after the failure takes no queued input, and the
// failure is the run's.
func TestAFailureStopsTheRunBeforeItsWorkerTakesTheLock(t *testing.T) {
	var calls atomic.Int32
	e := failFastEngine(t, &calls)
	defer e.shutdown()
	boom := errors.New("boom")
	e.failSoon(boom) // a task returned boom; its worker has not taken mu yet
	if e.ctx.Err() == nil {
		t.Fatal("the calls in flight were not cancelled")
	}
	e.mu.Lock()
	e.open++ // an input queued meanwhile, and a worker free to take it
	e.running++
	e.tasks.push(queued[int]{index: 2, value: 2})
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

// The error of a call that the failure cancelled, recorded before the
// failure's own, is not the run's.
func TestACancelledCallDoesNotReplaceTheFailure(t *testing.T) {
	var calls atomic.Int32
	e := failFastEngine(t, &calls)
	defer e.shutdown()
	boom := errors.New("boom")
	e.failSoon(boom)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.open++
	e.running++
	e.finishLocked(task[int]{index: 1}, struct{}{}, context.Canceled)
	if !errors.Is(e.err, boom) {
		t.Errorf("the run's error is %v, want boom", e.err)
	}
}

// A worker waiting out a push-back's pause, woken by a failure's cancel
// before the failed task's worker takes mu, stops the run with the
// failure's error, not with none.
func TestAFailureEndsAWaitForAPauseWithItsError(t *testing.T) {
	clock := testclock.New()
	fn := func(context.Context, int) (struct{}, error) { return struct{}{}, nil }
	e, err := newEngine(context.Background(), fn, nil, newConfig([]Option{MaxAtOnce(4), WithClock(clock)}), discard)
	if err != nil {
		t.Fatal(err)
	}
	e.begin(plainInputs(func(func(int) bool) {}))
	defer e.shutdown()

	e.mu.Lock()
	e.pausedUntil = clock.Now().Add(time.Hour) // a push-back's pause
	e.open++                                   // an input queued before it
	e.running++
	e.tasks.push(queued[int]{index: 2, value: 2})
	e.workers++
	e.awake++
	e.goRun(e.runQueued)
	e.mu.Unlock()
	clock.WaitFor(t, 1) // the worker waits out the pause

	boom := errors.New("boom")
	e.failSoon(boom) // a task returned boom; its worker has not taken mu yet
	e.wg.Wait()      // the waiting worker woke and returned first

	e.mu.Lock()
	defer e.mu.Unlock()
	e.open++
	e.running++
	e.finishLocked(task[int]{index: 1}, struct{}{}, boom)
	if !errors.Is(e.err, boom) {
		t.Errorf("the run's error is %v, want boom", e.err)
	}
}

// consumerEngine returns a run that hands results to a consumer, as AMap
// does, begun, whose fn returns its input.
func consumerEngine(t *testing.T) *engine[int, int] {
	t.Helper()
	fn := func(_ context.Context, v int) (int, error) { return v, nil }
	e, err := newEngine(context.Background(), fn, nil, newConfig([]Option{MaxAtOnce(4)}), toConsumer)
	if err != nil {
		t.Fatal(err)
	}
	e.begin(plainInputs(func(func(int) bool) {}))
	return e
}

// startedTasks counts n tasks as started, holding their slots, as the
// starter does.
func startedTasks(e *engine[int, int], n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.open += n
	e.running += n
}

// runToEnd calls fn for tk and hands its result on, as a worker does.
func runToEnd(e *engine[int, int], tk task[int]) {
	var ps []throttle.Permit
	v, err := e.call(tk, &ps)
	e.finish(tk, v, err)
}

// checkEnd checks that the consumer gets nothing more and that the run's
// error is want.
func checkEnd(t *testing.T, e *engine[int, int], want error) {
	t.Helper()
	if r, ok := e.receive(); ok {
		t.Fatalf("the consumer got %+v; want the end", r)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !errors.Is(e.err, want) {
		t.Errorf("the run's error is %v, want %v", e.err, want)
	}
}

// A success that fn returns after a failure was signalled comes from a
// call the failure cancelled: it is not handed out, even when its worker
// takes mu before the failed task's does.
func TestASuccessAfterTheFailureIsNotReported(t *testing.T) {
	e := consumerEngine(t)
	defer e.shutdown()
	boom := errors.New("boom")
	e.failSoon(boom) // a task returned boom; its worker has not taken mu yet
	startedTasks(e, 1)
	runToEnd(e, task[int]{index: 1, value: 7}) // the cancelled call returns a value anyway
	checkEnd(t, e, boom)
}

// A success that fn returned before the failure was signalled is handed
// out ahead of the failure's error, even when its worker takes mu after
// the failed task's did (its meters' Done took a while, say).
func TestASuccessBeforeTheFailureIsReportedWhenItsWorkerComesLate(t *testing.T) {
	e := consumerEngine(t)
	defer e.shutdown()
	startedTasks(e, 2) // this task and the one that fails
	var ps []throttle.Permit
	tk := task[int]{index: 0, value: 7}
	v, err := e.call(tk, &ps) // fn returns before the failure

	boom := errors.New("boom")
	e.failSoon(boom)
	e.finish(task[int]{index: 1, value: 8}, 0, boom) // the failure is recorded
	e.finish(tk, v, err)                             // then the success comes
	r, ok := e.receive()
	if !ok || r.val != 7 || r.err != nil {
		t.Fatalf("the consumer got %+v, %v; want the success that came before the failure", r, ok)
	}
	checkEnd(t, e, boom)
}

// A failure that stops the run without being signalled first (a meter's
// error before its task started) also makes a success that a call returns
// after it late: the call was cancelled by it.
func TestASuccessAfterAMetersFailureIsNotReported(t *testing.T) {
	e := consumerEngine(t)
	defer e.shutdown()
	startedTasks(e, 2) // a running task, and one whose meter fails
	meterDown := errors.New("meter down")
	e.finish(task[int]{index: 2, value: 9}, 0, meterDown) // as unstart does
	runToEnd(e, task[int]{index: 1, value: 7})            // the cancelled call returns a value anyway
	checkEnd(t, e, meterDown)
}

// A failure signalled before the parent ended, which cancelled fn's
// context with it as the cause, stays the run's error when the run's
// callback for the parent's end takes mu before the failing worker does.
func TestAFailureSignalledBeforeTheParentsEndStaysTheRunsError(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	fn := func(context.Context, int) (struct{}, error) { return struct{}{}, nil }
	e, err := newEngine(parent, fn, nil, newConfig([]Option{MaxAtOnce(4)}), discard)
	if err != nil {
		t.Fatal(err)
	}
	e.begin(plainInputs(func(func(int) bool) {}))
	defer e.shutdown()
	boom := errors.New("boom")
	e.failSoon(boom) // a task returned boom; its worker has not taken mu yet
	cancel()
	<-e.parentDone // the run's callback for the parent's end has run
	if got := context.Cause(e.ctx); got != boom {
		t.Fatalf("fn's context has cause %v, want boom", got)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != boom {
		t.Errorf("the run's error is %v, want boom, the cause fn's context reports", e.err)
	}
}

package testclock_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/internal/testclock"
)

// spin starts a goroutine that loops without blocking (yielding with
// testclock.Yield on each turn, if yield) and waits until it runs. The
// returned stop ends the loop and waits for the goroutine to return.
func spin(yield bool) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	var running atomic.Bool
	go func() {
		defer close(done)
		for {
			running.Store(true)
			select {
			case <-quit:
				return
			default:
			}
			if yield {
				testclock.Yield()
			}
		}
	}()
	for !running.Load() {
		runtime.Gosched()
	}
	return func() {
		close(quit)
		<-done
	}
}

func TestIdleWhileAGoroutineWaitsOnAChannel(t *testing.T) {
	ch := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ch
	}()
	if !testclock.AwaitIdle(context.Background(), 10*time.Second) {
		t.Error("AwaitIdle: a goroutine blocked on a channel counts as busy")
	}
	close(ch)
	<-done
}

func TestNotIdleWhileAGoroutineRuns(t *testing.T) {
	stop := spin(false)
	if testclock.Idle() {
		t.Error("Idle while a goroutine loops without blocking")
	}
	if testclock.AwaitIdle(context.Background(), 20*time.Millisecond) {
		t.Error("AwaitIdle reported idle while a goroutine loops without blocking")
	}
	stop()
	if !testclock.AwaitIdle(context.Background(), 10*time.Second) {
		t.Error("AwaitIdle: not idle once the loop has ended")
	}
}

func TestIdleWhileAGoroutinePollsWithGosched(t *testing.T) {
	defer spin(true)()
	if !testclock.AwaitIdle(context.Background(), 10*time.Second) {
		t.Error("AwaitIdle: a goroutine that polls with Yield counts as busy")
	}
}

func TestAwaitIdleEndsWithItsContext(t *testing.T) {
	defer spin(false)()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if testclock.AwaitIdle(ctx, 10*time.Second) {
		t.Error("AwaitIdle reported idle while a goroutine loops without blocking")
	}
}

var allocated []byte

// A goroutine that never blocks but allocates is at work, though it shows
// now and then as waiting on the runtime's semaphores (to start a garbage
// collection while Idle stops the world to read the stacks) or as yielding
// where the runtime made it: Idle must not take it for blocked.
func TestNotIdleWhileAGoroutineAllocates(t *testing.T) {
	var stop, running atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			running.Store(true)
			allocated = make([]byte, 64<<10)
		}
	}()
	for !running.Load() {
		runtime.Gosched()
	}
	defer func() {
		stop.Store(true)
		<-done
	}()
	for i := range 20000 {
		if testclock.Idle() {
			t.Fatalf("look %d: Idle while a goroutine allocates in a loop", i)
		}
	}
}

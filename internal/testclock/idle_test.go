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
// runtime.Gosched on each turn, if yield) and waits until it runs. The
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
				runtime.Gosched()
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
		t.Error("AwaitIdle: a goroutine that polls with runtime.Gosched counts as busy")
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

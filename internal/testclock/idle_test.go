package testclock_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/internal/testclock"
)

// spin starts a goroutine that loops without blocking until stop is
// closed, and waits until it runs.
func spin(stop chan struct{}, yield bool) (done chan struct{}) {
	done = make(chan struct{})
	var running atomic.Bool
	go func() {
		defer close(done)
		for {
			running.Store(true)
			select {
			case <-stop:
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
	return done
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
	stop := make(chan struct{})
	done := spin(stop, false)
	if testclock.Idle() {
		t.Error("Idle while a goroutine loops without blocking")
	}
	if testclock.AwaitIdle(context.Background(), 20*time.Millisecond) {
		t.Error("AwaitIdle reported idle while a goroutine loops without blocking")
	}
	close(stop)
	<-done
	if !testclock.AwaitIdle(context.Background(), 10*time.Second) {
		t.Error("AwaitIdle: not idle once the loop has ended")
	}
}

func TestIdleWhileAGoroutinePollsWithGosched(t *testing.T) {
	stop := make(chan struct{})
	done := spin(stop, true)
	if !testclock.AwaitIdle(context.Background(), 10*time.Second) {
		t.Error("AwaitIdle: a goroutine that polls with runtime.Gosched counts as busy")
	}
	close(stop)
	<-done
}

func TestAwaitIdleEndsWithItsContext(t *testing.T) {
	stop := make(chan struct{})
	done := spin(stop, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if testclock.AwaitIdle(ctx, 10*time.Second) {
		t.Error("AwaitIdle reported idle while a goroutine loops without blocking")
	}
	close(stop)
	<-done
}

package trimeter_test

import (
	"context"
	"errors"
	"iter"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/internal/testclock"
)

// A timer whose function the run set fires just as the run stops: Stop
// comes too late to keep the function from being called, and the call,
// in a goroutine of its own, waits for the run's lock. The run returns
// only once that call has returned, as it does for every goroutine of its
// own.
func TestTheRunReturnsAfterATimerCallThatBeganAsItStopped(t *testing.T) {
	clk := &lateStopClock{Clock: testclock.New(), armed: make(chan struct{}, 1), release: make(chan struct{}), called: make(chan struct{})}
	busy := errors.New("busy")
	fn := func(_ context.Context, v int) error {
		if v == 0 {
			return trimeter.Pushback(time.Hour, busy)
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-clk.armed // an input waits out the pause on the run's timer
		cancel()
	}()
	ended := make(chan struct{})
	var waited atomic.Bool
	go func() { // lets the call go ahead once the run waits for it, and not before
		defer close(clk.release)
		for {
			select {
			case <-ended:
				return
			default:
			}
			if goroutineIn("timing.(*Funcs).Wait") {
				waited.Store(true)
				return
			}
			runtime.Gosched()
		}
	}()
	err := trimeter.RunOnEach(ctx, naturals(), fn, trimeter.MaxAtOnce(1), trimeter.KeepGoing(), trimeter.WithClock(clk))
	returned := clk.entered.Load()
	close(ended)
	<-clk.called
	if !errors.Is(err, context.Canceled) {
		t.Errorf("RunOnEach = %v, want context.Canceled", err)
	}
	if !returned {
		t.Error("the run returned while the call of its stopped timer was still to come")
	}
	if !waited.Load() {
		t.Error("the run did not wait for the call of its stopped timer")
	}
}

// naturals yields 0, 1, 2, ... until the loop stops.
func naturals() iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := 0; yield(i); i++ {
		}
	}
}

// goroutineIn says whether a goroutine is in a function whose name
// contains name.
func goroutineIn(name string) bool {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Contains(string(buf[:n]), name)
		}
		buf = make([]byte, 2*len(buf))
	}
}

// lateStopClock is a fake clock whose timers that call a function act,
// the first time they are stopped, as if they had fired a moment before:
// Stop reports false, and the function is called in a goroutine of its
// own once release is closed.
type lateStopClock struct {
	clockwork.Clock
	armed   chan struct{} // receives when a function's timer is set
	release chan struct{} // closed to let the call go ahead
	entered atomic.Bool   // the call has begun
	called  chan struct{} // closed when the call has returned
	once    sync.Once
}

func (c *lateStopClock) AfterFunc(d time.Duration, f func()) clockwork.Timer {
	t := c.Clock.AfterFunc(d, f)
	select {
	case c.armed <- struct{}{}:
	default:
	}
	return &lateStopTimer{Timer: t, c: c, f: f}
}

type lateStopTimer struct {
	clockwork.Timer
	c *lateStopClock
	f func()
}

func (t *lateStopTimer) Stop() bool {
	if t.Timer.Stop() {
		t.c.once.Do(func() {
			go func() {
				defer close(t.c.called)
				<-t.c.release
				t.c.entered.Store(true)
				t.f()
			}()
		})
	}
	return false
}

// A clock that panics as the run sets a timer that calls back into it, to
// end a push-back's pause: the run raises the clock's panic and returns,
// leaving no timer counted that shutdown would wait for. The serial
// worker waits out the pause on such a timer before it starts input 1.
func TestAClockPanicWhileSettingARunTimerEndsTheRun(t *testing.T) {
	fn := func(_ context.Context, v int) error {
		if v == 0 {
			return trimeter.Pushback(time.Hour, errBusy)
		}
		return nil
	}
	clk := &panickyTimerClock{Clock: testclock.New()}
	clk.inAfterFunc.Store(true)
	r := endsWithin(t, func() error {
		return trimeter.RunOnEach(context.Background(), slices.Values([]int{0, 1, 2}), fn,
			trimeter.MaxAtOnce(1), trimeter.KeepGoing(), trimeter.WithClock(clk))
	})
	if pe, ok := r.(*trimeter.PanicError); !ok || pe.Value != "no timer today" {
		t.Errorf("RunOnEach = %v, want the clock's panic", r)
	}
}

// endsWithin runs f and returns what it panicked with, or its error; it
// fails the test if f has not returned within patience (the goroutine is
// then left behind, and the package's leak check reports it too).
func endsWithin(t *testing.T, f func() error) any {
	t.Helper()
	done := make(chan any, 1)
	go func() {
		var err error
		r := catch(func() { err = f() })
		if r == nil {
			r = err
		}
		done <- r
	}()
	select {
	case r := <-done:
		return r
	case <-time.After(patience):
		buf := make([]byte, 1<<20)
		t.Fatalf("the run did not return\n%s", buf[:runtime.Stack(buf, true)])
		return nil
	}
}

// panickyTimerClock is a fake clock whose AfterFunc panics once, while
// inAfterFunc is set.
type panickyTimerClock struct {
	*testclock.Clock
	inAfterFunc atomic.Bool
}

func (c *panickyTimerClock) AfterFunc(d time.Duration, f func()) clockwork.Timer {
	if c.inAfterFunc.Swap(false) {
		panic("no timer today")
	}
	return c.Clock.AfterFunc(d, f)
}

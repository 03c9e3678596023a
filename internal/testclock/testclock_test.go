package testclock_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/internal/testclock"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewStartsAtStart(t *testing.T) {
	c := testclock.New()
	if !c.Now().Equal(testclock.Start) {
		t.Fatalf("Now() = %v, want %v", c.Now(), testclock.Start)
	}
	if c.Elapsed() != 0 {
		t.Fatalf("Elapsed() = %v, want 0", c.Elapsed())
	}
}

func TestAdvanceWhenWakesTheSleeper(t *testing.T) {
	c := testclock.New()
	woke := make(chan time.Duration)
	go func() {
		c.Sleep(3 * time.Second)
		woke <- c.Elapsed()
	}()
	c.AdvanceWhen(t, 1, 3*time.Second)
	if got := <-woke; got != 3*time.Second {
		t.Fatalf("sleeper woke at %v, want 3s", got)
	}
}

func TestAdvanceWhenWaitsForEveryWaiter(t *testing.T) {
	c := testclock.New()
	woke := make(chan struct{})
	for range 3 {
		go func() {
			c.Sleep(time.Second)
			woke <- struct{}{}
		}()
	}
	c.AdvanceWhen(t, 3, time.Second)
	for range 3 {
		<-woke
	}
	if c.Elapsed() != time.Second {
		t.Fatalf("Elapsed() = %v, want 1s", c.Elapsed())
	}
}

// recorder is a testing.TB that keeps what Fatalf was given.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func TestWaitForFailsInsteadOfHanging(t *testing.T) {
	c := testclock.New()
	c.Timeout = 10 * time.Millisecond
	r := &recorder{TB: t}
	c.AdvanceWhen(r, 1, time.Second)
	want := "testclock: 1 waiters did not block on the clock within 10ms"
	if r.fatal != want {
		t.Fatalf("Fatalf got %q, want %q", r.fatal, want)
	}
	if c.Elapsed() != 0 {
		t.Fatalf("clock moved to %v after a failed wait", c.Elapsed())
	}
	r.fatal = ""
	c.WaitFor(r, 2)
	if r.fatal == "" {
		t.Fatal("WaitFor did not fail with no waiter")
	}
}

func TestCreepingMovesOnEveryReading(t *testing.T) {
	c := testclock.NewCreeping(time.Millisecond)
	c.Now()
	c.Since(testclock.Start)
	c.Until(testclock.Start)
	if got, want := c.Clock.Elapsed(), 3*time.Millisecond; got != want {
		t.Fatalf("after three readings the clock moved %v, want %v", got, want)
	}
	if got := c.Reads(); got != 3 {
		t.Fatalf("Reads() = %d after three readings", got)
	}
	c.Advance(time.Second) // not a reading
	if got := c.Reads(); got != 3 {
		t.Fatalf("Reads() = %d after an Advance", got)
	}
}

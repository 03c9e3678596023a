package timing_test

import (
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/internal/testclock"
	"github.com/trimeter-go/trimeter/internal/timing"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fired says whether t has fired.
func fired(ch <-chan time.Time) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestSettleLeavesATimerOfAStillClockAlone(t *testing.T) {
	clk := testclock.New()
	from := clk.Now()
	tm := clk.NewTimer(time.Second)
	defer tm.Stop()
	if !timing.Settle(clk, tm, from, time.Second) {
		t.Fatal("Settle reported a timer due a second from now as due already")
	}
	clk.Advance(time.Second - 1)
	if fired(tm.Chan()) {
		t.Fatal("the timer fired a nanosecond early")
	}
	clk.Advance(1)
	if !fired(tm.Chan()) {
		t.Fatal("the timer did not fire at its time")
	}
}

func TestSettleCountsFromTheReadingAfterAStep(t *testing.T) {
	clk := testclock.New()
	from := clk.Now()
	clk.Advance(400 * time.Millisecond) // a test steps the clock in between
	tm := clk.NewTimer(time.Second)     // so this would fire at 1.4 s
	defer tm.Stop()
	if !timing.Settle(clk, tm, from, time.Second) {
		t.Fatal("Settle reported a timer due 600 ms from now as due already")
	}
	clk.Advance(600*time.Millisecond - 1)
	if fired(tm.Chan()) {
		t.Fatal("the timer fired before from + d")
	}
	clk.Advance(1)
	if !fired(tm.Chan()) {
		t.Fatalf("the timer did not fire at from + d; it counted d from after the step")
	}
}

func TestSettleStopsATimerThatIsDueAlready(t *testing.T) {
	clk := testclock.New()
	from := clk.Now()
	clk.Advance(2 * time.Second)
	tm := clk.NewTimer(time.Second)
	if timing.Settle(clk, tm, from, time.Second) {
		t.Fatal("Settle reported a timer whose time has passed as set")
	}
	if tm.Stop() {
		t.Fatal("Settle left the timer of a passed time running")
	}
}

func TestSettleGivesUpOnAClockThatMovesOnEveryReading(t *testing.T) {
	clk := testclock.NewCreeping(time.Microsecond)
	from := clk.Now()
	tm := clk.NewTimer(time.Second)
	defer tm.Stop()
	before := clk.Reads()
	if !timing.Settle(clk, tm, from, time.Second) {
		t.Fatal("Settle reported a timer due in about a second as due already")
	}
	if n := clk.Reads() - before; n > 3 {
		t.Fatalf("Settle read a creeping clock %d times; want at most 3", n)
	}
	// Each setting counted from a reading of its own, so the timer fires
	// at from + d. (Advance on the fake clock underneath: no readings.)
	clk.Clock.Advance(from.Add(time.Second).Sub(clk.Clock.Now()) - 1)
	if fired(tm.Chan()) {
		t.Fatal("the timer fired before from + d")
	}
	clk.Clock.Advance(1)
	if !fired(tm.Chan()) {
		t.Fatal("the timer did not fire at from + d")
	}
}

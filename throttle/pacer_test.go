package throttle

import (
	"context"
	"testing"
	"time"
)

// A stall (a machine short of processors, a paused VM) makes timers wake
// late, and the coarse margin learns it. Once it is over, waits shorter
// than that margin sleep on no timer and so measure nothing: each brings
// the margin a step back instead, so that a bucket whose spare tokens
// cover an ordinary late wake-up goes back to sleeping on a timer rather
// than spinning for good.
func TestCoarseMarginComesBackAfterAStall(t *testing.T) {
	saved := coarseLate
	coarseLate = newLateness(time.Millisecond)
	defer func() { coarseLate = saved }()
	initial := coarseLate.margin()
	for range 20 {
		coarseLate.observe(50 * time.Millisecond) // timers woke very late
	}
	raised := coarseLate.margin()
	if raised < 3*initial {
		t.Fatalf("margin %v after a stall, want it raised well above %v", raised, initial)
	}
	for range 200 {
		pace(context.Background(), nil, time.Now().Add(time.Millisecond))
	}
	if m := coarseLate.margin(); m > initial+initial/10 {
		t.Errorf("margin %v after a stall, still %v after 200 waits of 1 ms, want back near %v", raised, m, initial)
	}
}

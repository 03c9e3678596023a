package trimeter_test

import (
	"context"
	"testing"

	"github.com/trimeter-go/trimeter"
)

// With MaxAtOnce alone, a feeder queues the inputs and the workers summon
// one another for the inputs left in the queue. Whatever the order in which
// they wake, every slot must end up with a call running: here every call
// waits until all of them run, in rounds, so a worker that was never
// summoned would hold the run up for good (and the barrier reports it).
func TestFedWorkersFillEverySlotRoundAfterRound(t *testing.T) {
	const limit, rounds = 64, 4
	for _, mode := range []string{"RunOnEach", "AMap"} {
		t.Run(mode, func(t *testing.T) {
			var g gauge
			barriers := make([]*barrier, rounds)
			for i := range barriers {
				barriers[i] = newBarrier(limit)
			}
			call := func(v int) {
				g.enter()
				defer g.leave()
				if !t.Failed() { // after one barrier gave up, finish quickly
					barriers[v/limit].wait(t)
				}
			}
			in := newProbe(limit * rounds).seq()
			switch mode {
			case "RunOnEach":
				err := trimeter.RunOnEach(context.Background(), in, func(_ context.Context, v int) error {
					call(v)
					return nil
				}, trimeter.MaxAtOnce(limit))
				if err != nil {
					t.Fatal(err)
				}
			case "AMap":
				got := collect(trimeter.AMap(context.Background(), in, func(_ context.Context, v int) (int, error) {
					call(v)
					return v, nil
				}, trimeter.MaxAtOnce(limit)))
				if len(got) != limit*rounds {
					t.Fatalf("got %d results, want %d", len(got), limit*rounds)
				}
			}
			if g.peak.Load() != limit {
				t.Errorf("peak of %d calls at once, want %d", g.peak.Load(), limit)
			}
		})
	}
}

// With no MaxAtOnce (and no rate, meter or PerKey) the feeder takes the run
// too, its queue then the only bound on the inputs pulled ahead; the
// workers it summons, and those they summon, must still run every input at
// once. Here every call waits until all of them run, far more than the
// queue holds, so a worker that was never summoned, or an input the queue
// held back, would hold the run up for good (and the barrier reports it).
func TestFedRunWithNoLimitRunsEveryInputAtOnce(t *testing.T) {
	const n = 200
	for _, mode := range []string{"RunOnEach", "AMap"} {
		t.Run(mode, func(t *testing.T) {
			if route := trimeter.RouteOf[int, int](mode == "AMap"); route != "fed" {
				t.Fatalf("a run with no options takes the %s path, want the feeder's", route)
			}
			var g gauge
			all := newBarrier(n)
			call := func() {
				g.enter()
				defer g.leave()
				all.wait(t)
			}
			p := newProbe(n)
			switch mode {
			case "RunOnEach":
				err := trimeter.RunOnEach(context.Background(), p.seq(), func(context.Context, int) error {
					call()
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			case "AMap":
				got := collect(trimeter.AMap(context.Background(), p.seq(), func(_ context.Context, v int) (int, error) {
					call()
					return v, nil
				}))
				if len(got) != n {
					t.Fatalf("got %d results, want %d", len(got), n)
				}
			}
			if g.peak.Load() != n {
				t.Errorf("peak of %d calls at once, want %d", g.peak.Load(), n)
			}
			checkCleanedUp(t, p)
		})
	}
}

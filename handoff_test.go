package trimeter_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trimeter-go/trimeter"
)

// At MaxAtOnce(1), results go to the loop through a channel as long as
// BufferSize, up to 64, and through the outbox beyond: these tests run
// both, with 100 for the outbox.
var oneAtATimeBuffers = []int{0, 1, 2, 64, 100}

// A call that ends the parent context and then returns a value finished
// after the run stopped: the loop gets ctx.Err() and never that value.
func TestAResultThatFinishesAfterTheParentEndedIsDropped(t *testing.T) {
	for _, buf := range oneAtATimeBuffers {
		opts := []trimeter.Option{trimeter.MaxAtOnce(1), trimeter.BufferSize(buf)}
		t.Run(fmt.Sprintf("the only call, BufferSize(%d)", buf), func(t *testing.T) {
			for range 50 {
				ctx, cancel := context.WithCancel(context.Background())
				fn := func(context.Context, int) (int, error) { cancel(); return 7, nil }
				var saw []string
				for in, o := range trimeter.Outcomes(ctx, slices.Values([]int{0}), fn, opts...) {
					saw = append(saw, fmt.Sprint(in.Index, o.Value, o.Err))
				}
				cancel()
				if want := []string{"-1 0 context canceled"}; !slices.Equal(saw, want) {
					t.Fatalf("the loop saw %q, want %q", saw, want)
				}
			}
			goleak.VerifyNone(t)
		})
		t.Run(fmt.Sprintf("while the loop waits for it, BufferSize(%d)", buf), func(t *testing.T) {
			for range 100 {
				ctx, cancel := context.WithCancel(context.Background())
				tookFirst := make(chan struct{})
				fn := func(_ context.Context, v int) (int, error) {
					if v == 1 {
						<-tookFirst
						for range 10 {
							runtime.Gosched() // the loop comes back and waits
						}
						cancel()
						return -1, nil
					}
					return v, nil
				}
				var saw []int
				var errs []error
				for v, err := range trimeter.AMap(ctx, slices.Values([]int{0, 1, 2, 3}), fn, opts...) {
					if err != nil {
						errs = append(errs, err)
						continue
					}
					saw = append(saw, v)
					if v == 0 {
						close(tookFirst)
					}
				}
				cancel()
				if !slices.Equal(saw, []int{0}) || len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
					t.Fatalf("the loop saw %v and errors %v, want [0] and context.Canceled once", saw, errs)
				}
			}
			goleak.VerifyNone(t)
		})
	}
}

// cleanedSeq yields 0, 1, 2, ... for ever, counting the inputs pulled, and
// closes cleaned when its deferred cleanup runs.
func cleanedSeq(pulled *atomic.Int64, cleaned chan struct{}) iter.Seq[int] {
	return func(yield func(int) bool) {
		defer close(cleaned)
		for i := 0; ; i++ {
			pulled.Add(1)
			if !yield(i) {
				return
			}
		}
	}
}

// When ctx ends while the loop body is busy and the window is full, the
// run stops at once: the input sequence returns (its cleanup runs) while
// the loop body still runs, without waiting for it to come back for a
// result.
func TestTheParentsEndStopsTheInputWhileTheLoopBodyRuns(t *testing.T) {
	for _, buf := range oneAtATimeBuffers {
		t.Run(fmt.Sprintf("BufferSize(%d)", buf), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var pulled atomic.Int64
			cleaned := make(chan struct{})
			full := make(chan struct{})
			fn := func(_ context.Context, v int) (int, error) {
				if v == buf+1 { // the last input the window lets in
					defer close(full)
				}
				return v, nil
			}
			var errs []error
			for v, err := range trimeter.AMap(ctx, cleanedSeq(&pulled, cleaned), fn, trimeter.MaxAtOnce(1), trimeter.BufferSize(buf)) {
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if v != 0 {
					continue
				}
				<-full
				cancel()
				select {
				case <-cleaned:
				case <-time.After(patience):
					t.Fatalf("ctx ended, and the input sequence still ran %v later, while the loop body waited for it", patience)
				}
			}
			if len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
				t.Fatalf("errors %v, want context.Canceled once", errs)
			}
			goleak.VerifyNone(t)
		})
	}
}

// The buffer fills up to BufferSize while the loop body is busy, and not
// beyond, on both sides of the largest channel.
func TestTheBufferFillsAtMaxAtOnce1(t *testing.T) {
	for _, buf := range []int{0, 1, 64, 65} {
		t.Run(fmt.Sprintf("BufferSize(%d)", buf), func(t *testing.T) {
			var pulled atomic.Int64
			cleaned := make(chan struct{})
			id := func(_ context.Context, v int) (int, error) { return v, nil }
			// One result received, buf in the buffer and one held by the
			// worker, waiting for room.
			full := int64(1 + buf + 1)
			for v, err := range trimeter.AMap(context.Background(), cleanedSeq(&pulled, cleaned), id, trimeter.MaxAtOnce(1), trimeter.BufferSize(buf)) {
				if err != nil {
					t.Fatal(err)
				}
				if v != 0 {
					t.Fatalf("got %d first, want 0", v)
				}
				for deadline := time.Now().Add(patience); pulled.Load() < full; runtime.Gosched() {
					if time.Now().After(deadline) {
						t.Fatalf("%d inputs pulled after %v, want the window's %d", pulled.Load(), patience, full)
					}
				}
				for range 1000 {
					runtime.Gosched() // give the worker time to overrun, if it would
				}
				if n := pulled.Load(); n != full {
					t.Fatalf("%d inputs pulled with one result received, want %d", n, full)
				}
				break
			}
			<-cleaned
			goleak.VerifyNone(t)
		})
	}
}

// Breaks and parent cancels at random points over an endless input, in
// every buffer size: results come in order, the window holds, the input's
// cleanup runs once, and nothing outlives the loop.
func TestStopsAtRandomAtMaxAtOnce1(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 7))
	for run := range 1000 {
		buf := oneAtATimeBuffers[r.IntN(len(oneAtATimeBuffers))]
		at := 1 + r.IntN(150)
		cancels := r.IntN(2) == 0
		opts := []trimeter.Option{trimeter.MaxAtOnce(1), trimeter.BufferSize(buf)}
		if r.IntN(2) == 0 {
			opts = append(opts, trimeter.Ordered())
		}
		ctx, cancel := context.WithCancel(context.Background())
		var pulled atomic.Int64
		cleaned := make(chan struct{})
		id := func(_ context.Context, v int) (int, error) { return v, nil }
		received := 0
		for v, err := range trimeter.AMap(ctx, cleanedSeq(&pulled, cleaned), id, opts...) {
			if err != nil {
				if !cancels || !errors.Is(err, context.Canceled) {
					t.Fatalf("run %d (BufferSize(%d)): error %v", run, buf, err)
				}
				break
			}
			if received >= at {
				t.Fatalf("run %d (BufferSize(%d)): result %d after the loop cancelled ctx", run, buf, v)
			}
			if v != received {
				t.Fatalf("run %d (BufferSize(%d)): got %d, want %d", run, buf, v, received)
			}
			received++
			if over := pulled.Load() - int64(received); over > int64(buf+2) {
				t.Fatalf("run %d: %d inputs pulled beyond the %d received, BufferSize(%d)", run, over, received, buf)
			}
			if received == at {
				if cancels {
					cancel() // the loop goes on, and gets ctx.Err() next
					continue
				}
				break
			}
		}
		cancel()
		select {
		case <-cleaned:
		default:
			t.Fatalf("run %d (BufferSize(%d)): the loop ended before the input's cleanup ran", run, buf)
		}
	}
	goleak.VerifyNone(t)
}

// A buffer of large results is not allocated up front: with BufferSize(64)
// and results of 4 KiB, a run of one input allocates far less than 64 of
// them.
func TestALargeBufferOfLargeResultsIsNotAllocatedAtOnce(t *testing.T) {
	type page [4 << 10]byte
	fn := func(context.Context, int) (page, error) { return page{}, nil }
	run := func() {
		for _, err := range trimeter.AMap(context.Background(), slices.Values([]int{0}), fn, trimeter.MaxAtOnce(1), trimeter.BufferSize(64)) {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	run() // first-use allocations, outside the count
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	run()
	runtime.ReadMemStats(&after)
	if got, all := after.TotalAlloc-before.TotalAlloc, uint64(64*len(page{})); got >= all/2 {
		t.Errorf("one input allocated %d bytes, want well under the %d of 64 results", got, all)
	}
	goleak.VerifyNone(t)
}

// A channel cannot carry an element of 64 KiB or more. Results and inputs
// that large go to the loop all the same, whichever way the run hands them
// over: through the handoff at MaxAtOnce(1), the outbox beyond it.
func TestResultsOf64KiBReachTheLoop(t *testing.T) {
	type page [64 << 10]byte
	fetch := func(_ context.Context, v int) (page, error) {
		var p page
		p[0], p[len(p)-1] = byte(v), byte(v+1)
		return p, nil
	}
	for _, n := range []int{1, 2} {
		for _, buf := range []int{0, 1, 2} {
			t.Run(fmt.Sprintf("MaxAtOnce(%d) and BufferSize(%d)", n, buf), func(t *testing.T) {
				var got []int
				for p, err := range trimeter.AMap(context.Background(), slices.Values([]int{1, 2, 3, 4, 5}), fetch, trimeter.MaxAtOnce(n), trimeter.BufferSize(buf), trimeter.Ordered()) {
					if err != nil {
						t.Fatal(err)
					}
					if p[len(p)-1] != p[0]+1 {
						t.Fatalf("a result's last byte is %d, want %d", p[len(p)-1], p[0]+1)
					}
					got = append(got, int(p[0]))
				}
				if want := []int{1, 2, 3, 4, 5}; !slices.Equal(got, want) {
					t.Fatalf("the loop got %v, want %v", got, want)
				}
				var sum atomic.Int64
				count := func(_ context.Context, p page) error { sum.Add(int64(p[0])); return nil }
				pages := func(yield func(page) bool) {
					for i := range 5 {
						if p, _ := fetch(context.Background(), i+1); !yield(p) {
							return
						}
					}
				}
				if err := trimeter.RunOnEach(context.Background(), pages, count, trimeter.MaxAtOnce(n)); err != nil || sum.Load() != 15 {
					t.Fatalf("RunOnEach over pages: %v, sum %d; want nil, 15", err, sum.Load())
				}
			})
		}
	}
	goleak.VerifyNone(t)
}

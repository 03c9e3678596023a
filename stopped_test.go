package trimeter_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/trimeter-go/trimeter"
)

// stopCases are the limits of limitCases and three more paths: a buffer
// behind one task at a time, in a channel and, beyond the largest such
// channel, in the outbox; and inputs waiting aside for their key.
var stopCases = append(slices.Clone(limitCases),
	limitCase{name: "with MaxAtOnce(1) and BufferSize(1)", opts: []trimeter.Option{trimeter.MaxAtOnce(1), trimeter.BufferSize(1)}, atOnce: 1, buffer: 1},
	limitCase{name: "with MaxAtOnce(1) and BufferSize(100)", opts: []trimeter.Option{trimeter.MaxAtOnce(1), trimeter.BufferSize(100)}, atOnce: 1, buffer: 100},
	limitCase{name: "with MaxAtOnce(4) and PerKey", opts: []trimeter.Option{trimeter.MaxAtOnce(4), trimeter.PerKey(func(int) int { return 0 }, trimeter.MaxAtOnce(1))}, atOnce: 4},
)

// stopsBeforeTheSecondInput says how a run is stopped once its first task
// has run, before the sequence yields the second input: first is the
// first task's context, cancel the parent's cancel.
type stopsBeforeTheSecondInput struct {
	name string
	// fail is the first task's error.
	fail error
	// breaks says whether the loop breaks at the first result.
	breaks bool
	// wait stops the run, from inside the sequence, and waits until it has
	// stopped: the first task's context has ended.
	wait func(cancel context.CancelFunc, first context.Context)
}

// An input that the sequence yields after the run has stopped (a break,
// the parent's end or a failure, each seen by the sequence before it
// yields) is not started, on any path: fn is called for nothing after the
// stop.
func TestAnInputYieldedAfterTheStopDoesNotStart(t *testing.T) {
	errBoom := errors.New("boom")
	stops := []stopsBeforeTheSecondInput{
		{name: "a break", breaks: true, wait: func(_ context.CancelFunc, first context.Context) { <-first.Done() }},
		{name: "a parent cancel", wait: func(cancel context.CancelFunc, first context.Context) {
			cancel()
			<-first.Done()
		}},
		{name: "a failure", fail: errBoom, wait: func(_ context.CancelFunc, first context.Context) { <-first.Done() }},
	}
	for _, stop := range stops {
		for _, lc := range stopCases {
			for _, oc := range orderCases {
				opts := slices.Clone(lc.opts)
				if oc.ordered {
					opts = append(opts, trimeter.Ordered())
				}
				t.Run(fmt.Sprintf("after %s %s %s", stop.name, lc.name, oc.name), func(t *testing.T) {
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					firstCtx := make(chan context.Context, 1)
					in := func(yield func(int) bool) {
						if !yield(0) {
							return
						}
						stop.wait(cancel, <-firstCtx)
						yield(1)
					}
					var late atomic.Int64
					fn := func(ctx context.Context, i int) (int, error) {
						if i > 0 {
							late.Add(1)
							return i, nil
						}
						firstCtx <- ctx
						return i, stop.fail
					}
					for _, err := range trimeter.AMap(ctx, in, fn, opts...) {
						if stop.breaks {
							break
						}
						_ = err
					}
					if n := late.Load(); n > 0 {
						t.Fatalf("fn was called for an input yielded after the run stopped")
					}
				})
			}
		}
	}
}

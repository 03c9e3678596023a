package trimeter_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/throttle"
)

// withPerKey adds a PerKey case to limitCases: its workers pull through
// iter.Pull too.
var withPerKey = append(append([]limitCase(nil), limitCases...),
	limitCase{name: "with PerKey", opts: []trimeter.Option{trimeter.MaxAtOnce(4), trimeter.PerKey(func(v int) int { return v % 2 }, trimeter.MaxAtOnce(2))}, atOnce: 4},
)

// loopEnds runs loop in a goroutine of its own and waits until it ends.
// If it has not ended within patience, it calls release to end it, waits
// for it, and fails the test with what's message.
func loopEnds(t *testing.T, loop, release func(), what func() string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		loop()
	}()
	select {
	case <-done:
	case <-time.After(patience):
		release()
		<-done
		t.Fatal(what())
	}
}

type cleanupBoom struct{}
type fnBoom struct{}

// cleanupPanics yields 0, 1, 2, ... and panics in its deferred cleanup.
func cleanupPanics() iter.Seq[int] {
	return func(yield func(int) bool) {
		defer panic(cleanupBoom{})
		for i := 0; ; i++ {
			if !yield(i) {
				return
			}
		}
	}
}

// A panic in fn stops the run; the input's cleanup then panics too. The
// panic raised is fn's, the first, on every path: the cleanup's does not
// replace it.
func TestFnPanicIsNotReplacedByTheInputsCleanupPanic(t *testing.T) {
	for _, lc := range withPerKey {
		for _, shape := range []string{"AMap", "RunOnEach"} {
			t.Run(shape+" "+lc.name, func(t *testing.T) {
				fn := func(_ context.Context, v int) (int, error) {
					if v == 0 {
						panic(fnBoom{})
					}
					return v, nil
				}
				r := catch(func() {
					if shape == "RunOnEach" {
						_ = trimeter.RunOnEach(context.Background(), cleanupPanics(), func(ctx context.Context, v int) error {
							_, err := fn(ctx, v)
							return err
						}, lc.opts...)
						return
					}
					for range trimeter.AMap(context.Background(), cleanupPanics(), fn, lc.opts...) {
					}
				})
				pe, ok := r.(*trimeter.PanicError)
				if !ok || pe.Value != (fnBoom{}) {
					t.Errorf("recovered %#v, want a *PanicError of fn's panic, the first", r)
				}
			})
		}
	}
}

// Under fail-fast, a crawler's sequence that waits for the links the loop
// body feeds it gets released by the body when the error comes: the error
// reaches the body once the calls have returned, without waiting for the
// sequence, which waits for the body.
func TestAFailureReachesTheBodyOfACrawlerWhoseSequenceWaitsOnIt(t *testing.T) {
	cases := map[string][]trimeter.Option{
		"MaxAtOnce(1)": {trimeter.MaxAtOnce(1)},
		"MaxAtOnce(4)": {trimeter.MaxAtOnce(4)},
		"unbounded":    nil,
		"PerKey":       {trimeter.MaxAtOnce(4), trimeter.PerKey(func(v string) byte { return v[0] }, trimeter.MaxAtOnce(1))},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			seqCtx, releaseSeq := context.WithCancel(context.Background())
			defer releaseSeq()
			found, seq := foundInputs(seqCtx, "b1", "a1")
			fetch := func(ctx context.Context, v string) (string, error) {
				switch v {
				case "b1":
					return "", errBoom // a broken page
				case "a1":
					awaitCancel(t, ctx) // a slow page: b1 fails first
					return "", ctx.Err()
				}
				return v, nil
			}
			var got error
			loopEnds(t, func() {
				for v, err := range trimeter.AMap(context.Background(), seq, fetch, opts...) {
					if err != nil {
						releaseSeq() // as PerKey's doc asks, before the loop ends
						got = err
						return
					}
					if v == "a1" {
						found <- "a2"
					}
				}
			}, releaseSeq, func() string {
				return fmt.Sprintf("the loop got nothing for %v after b1 failed: the error waited for the sequence, which waited for the loop (then got %v)", patience, got)
			})
			if !errors.Is(got, errBoom) {
				t.Errorf("the loop ended with %v, want %v", got, errBoom)
			}
		})
	}
}

// A stage's failure reaches the loop once its calls have returned, while
// the stage waits on the stage before for a token that is far off: the
// loop can then cancel the context the stages share, which ends that
// wait (Then's doc).
func TestAThenStagesFailureIsNotHeldBackByTheStageBefore(t *testing.T) {
	for name, opts := range map[string][]trimeter.Option{
		"MaxAtOnce(2)": {trimeter.MaxAtOnce(2)},
		"unbounded":    nil,
		"with a meter": {trimeter.MaxAtOnce(2), trimeter.WithMeter(throttle.NewConcurrency(10))},
	} {
		t.Run(name, func(t *testing.T) {
			clk := newFakeClock() // never moved: the second token never comes
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			first := trimeter.AMap(ctx, newProbe(-1).seq(), square, trimeter.MaxPerSecond(0.001), trimeter.WithClock(clk))
			second := trimeter.Then(ctx, first, func(context.Context, int) (int, error) { return 0, errBoom }, opts...)
			var got error
			loopEnds(t, func() {
				for _, err := range second {
					got = err
					if err != nil {
						cancel() // as Then's doc advises, so that the stage before stops waiting
					}
				}
			}, cancel, func() string {
				return fmt.Sprintf("the failure did not reach the loop in %v: it waited for the stage before (then got %v)", patience, got)
			})
			if !errors.Is(got, errBoom) {
				t.Errorf("got %v, want %v", got, errBoom)
			}
		})
	}
}

// Under KeepGoing, the parent's end still ends the call, and the call
// returns the parent's error alone: not the failures gathered until then.
func TestParentEndUnderKeepGoingReturnsItsErrorAlone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := trimeter.RunOnEach(ctx, slices.Values([]int{0, 1, 2}), func(_ context.Context, v int) error {
		if v == 0 {
			return errBoom
		}
		if v == 2 {
			cancel()
		}
		return nil
	}, trimeter.KeepGoing(), trimeter.MaxAtOnce(1))
	if !errors.Is(err, context.Canceled) || errors.Is(err, errBoom) {
		t.Errorf("RunOnEach returned %v, want context.Canceled alone", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	fns := []func(context.Context) (int, error){
		func(context.Context) (int, error) { return 0, errBoom },
		func(context.Context) (int, error) { cancel(); return 1, nil },
	}
	res, err := trimeter.RunAll(ctx, slices.Values(fns), trimeter.KeepGoing(), trimeter.MaxAtOnce(1))
	if !errors.Is(err, context.Canceled) || errors.Is(err, errBoom) || len(res) != 0 {
		t.Errorf("RunAll returned %v, %v; want no results and context.Canceled alone", res, err)
	}
}

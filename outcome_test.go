package trimeter_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trimeter-go/trimeter"
)

func TestOutcomeUnwrap(t *testing.T) {
	if v, err := (trimeter.Outcome[int]{Value: 3}).Unwrap(); v != 3 || err != nil {
		t.Errorf("a value's outcome unwraps to %v, %v; want 3, nil", v, err)
	}
	if v, err := (trimeter.Outcome[int]{Err: errBoom}).Unwrap(); v != 0 || err != errBoom {
		t.Errorf("an error's outcome unwraps to %v, %v; want 0, %v", v, err, errBoom)
	}
	// Built by hand with a value beside the error: the error wins.
	if v, err := (trimeter.Outcome[int]{Value: 5, Err: errBoom}).Unwrap(); v != 0 || err != errBoom {
		t.Errorf("an outcome of 5 and an error unwraps to %v, %v; want 0, %v", v, err, errBoom)
	}
}

var words = []string{"alpha", "xray", "bravo", "charlie", "xenon", "delta", "echo", "xylem", "foxtrot"}

// wordLength fails for words that begin with x.
func wordLength(_ context.Context, w string) (int, error) {
	if strings.HasPrefix(w, "x") {
		return 0, fmt.Errorf("%s: %w", w, errBoom)
	}
	return len(w), nil
}

func TestOutcomesGiveEachInputItsOutcome(t *testing.T) {
	forLimitsAndOrders(t, "every input comes once with its index, value and outcome", func(t *testing.T, _ limitCase, ordered bool, opts []trimeter.Option) {
		var calls atomic.Int64
		fn := func(ctx context.Context, w string) (int, error) {
			calls.Add(1)
			return wordLength(ctx, w)
		}
		seen := make([]bool, len(words))
		last := -1
		for in, o := range trimeter.Outcomes(context.Background(), slices.Values(words), fn, opts...) {
			if in.Index < 0 || in.Index >= len(words) || seen[in.Index] {
				t.Fatalf("input %+v out of range or seen twice", in)
			}
			seen[in.Index] = true
			if ordered && in.Index != last+1 {
				t.Errorf("input %d came after input %d under Ordered", in.Index, last)
			}
			last = in.Index
			if in.Value != words[in.Index] {
				t.Errorf("input %d has value %q, want %q", in.Index, in.Value, words[in.Index])
			}
			v, err := o.Unwrap()
			wantV, wantErr := wordLength(context.Background(), in.Value)
			if v != wantV || (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
				t.Errorf("outcome of %q is %v, %v; want %v, %v", in.Value, v, err, wantV, wantErr)
			}
		}
		for i, ok := range seen {
			if !ok {
				t.Errorf("no outcome for input %d (%q)", i, words[i])
			}
		}
		if calls.Load() != int64(len(words)) {
			t.Errorf("fn called %d times, want %d: failures must not stop the run", calls.Load(), len(words))
		}
	})
}

func TestOutcomesBreakAtEveryPosition(t *testing.T) {
	const n = 5
	forLimitsAndOrders(t, "breaking cleans up", func(t *testing.T, _ limitCase, _ bool, opts []trimeter.Option) {
		for stopAt := 1; stopAt <= n; stopAt++ {
			t.Run(fmt.Sprintf("after outcome %d of %d", stopAt, n), func(t *testing.T) {
				p := newProbe(n)
				got := 0
				for range trimeter.Outcomes(context.Background(), p.seq(), square, opts...) {
					if got++; got == stopAt {
						break
					}
				}
				if got != stopAt {
					t.Errorf("received %d outcomes, want %d", got, stopAt)
				}
				checkCleanedUp(t, p)
			})
		}
	})
}

func TestOutcomesPanicInFn(t *testing.T) {
	forLimitsAndOrders(t, "a panic in fn reaches the loop once the other calls ended", func(t *testing.T, lc limitCase, _ bool, opts []trimeter.Option) {
		k := below(lc.atOnce, 2)
		var b blocker
		fn := func(ctx context.Context, v int) (int, error) {
			if v == k {
				b.started.await(t, k, "calls blocked")
				detonate(v)
			}
			return 0, b.block(t, ctx)
		}
		p := newProbe(5)
		r := catch(func() {
			for in, o := range trimeter.Outcomes(context.Background(), p.seq(), fn, opts...) {
				t.Errorf("unexpected outcome %+v %+v", in, o)
			}
		})
		checkPanicError(t, r, boomValue{k}, "detonate")
		b.checkAllCancelled(t)
		checkCleanedUp(t, p)
	})
}

func TestOutcomesParentCancel(t *testing.T) {
	forLimitsAndOrders(t, "cancelling the parent ends the run with one outcome at index -1", func(t *testing.T, _ limitCase, _ bool, opts []trimeter.Option) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var b blocker
		fn := func(ctx context.Context, v int) (int, error) {
			switch {
			case v < 2:
				return v, nil
			case v == 2:
				cancel()
			}
			return 0, b.block(t, ctx)
		}
		p := newProbe(6)
		var ends []error
		for in, o := range trimeter.Outcomes(ctx, p.seq(), fn, opts...) {
			switch {
			case in.Index == -1:
				ends = append(ends, o.Err)
			case len(ends) > 0:
				t.Errorf("outcome %+v %+v after the end", in, o)
			case o.Err != nil && !errors.Is(o.Err, context.Canceled):
				t.Errorf("input %d failed with %v", in.Index, o.Err)
			}
		}
		if len(ends) != 1 || ends[0] != context.Canceled {
			t.Errorf("ended with %v, want context.Canceled once", ends)
		}
		b.checkAllCancelled(t)
		checkCleanedUp(t, p)
	})
}

func TestOutcomesEachRangeRunsAfresh(t *testing.T) {
	var calls atomic.Int64
	fn := func(ctx context.Context, w string) (int, error) { calls.Add(1); return wordLength(ctx, w) }
	outcomes := trimeter.Outcomes(context.Background(), slices.Values(words), fn, trimeter.MaxAtOnce(3))
	for round := 1; round <= 2; round++ {
		n := 0
		for range outcomes {
			n++
		}
		if n != len(words) {
			t.Errorf("round %d yielded %d outcomes, want %d", round, n, len(words))
		}
	}
	if calls.Load() != int64(2*len(words)) {
		t.Errorf("fn called %d times, want %d", calls.Load(), 2*len(words))
	}
}

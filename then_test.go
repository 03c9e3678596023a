package trimeter_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/internal/testclock"
	"github.com/trimeter-go/trimeter/throttle"
)

// stageErr is the error a pipeline stage's fn returns: which stage failed
// on which input.
type stageErr struct{ stage, in int }

func (e *stageErr) Error() string { return fmt.Sprintf("stage %d failed on input %d", e.stage, e.in) }

// pipeline is a chain of stages over the inputs 0, 1, 2, ...: stage s
// turns v into 10·v + s, so a value tells every stage it went through.
// fail says which stage fails on which original input; every call is
// counted.
type pipeline struct {
	stages int
	fail   func(stage, in int) bool // nil: nothing fails
	calls  []atomic.Int64           // calls of each stage's fn
}

func newPipeline(stages int, fail func(stage, in int) bool) *pipeline {
	return &pipeline{stages: stages, fail: fail, calls: make([]atomic.Int64, stages)}
}

// origin recovers the original input from a value after stages stages.
func origin(v, stages int) int {
	for range stages {
		v /= 10
	}
	return v
}

// want is the value input in becomes after every stage.
func (p *pipeline) want(in int) int {
	v := in
	for s := range p.stages {
		v = 10*v + s
	}
	return v
}

func (p *pipeline) fn(s int) func(context.Context, int) (int, error) {
	return func(_ context.Context, v int) (int, error) {
		p.calls[s].Add(1)
		if in := origin(v, s); p.fail != nil && p.fail(s, in) {
			return 0, &stageErr{s, in}
		}
		return 10*v + s, nil
	}
}

// run chains the stages with AMap and Then; opts(s) gives stage s its
// options.
func (p *pipeline) run(ctx context.Context, in iter.Seq[int], opts func(s int) []trimeter.Option) iter.Seq2[int, error] {
	out := trimeter.AMap(ctx, in, p.fn(0), opts(0)...)
	for s := 1; s < p.stages; s++ {
		out = trimeter.Then(ctx, out, p.fn(s), opts(s)...)
	}
	return out
}

func sameOpts(opts ...trimeter.Option) func(int) []trimeter.Option {
	return func(int) []trimeter.Option { return opts }
}

func TestThenChainsStages(t *testing.T) {
	const n = 30
	for stages := 2; stages <= 4; stages++ {
		forLimitsAndOrders(t, fmt.Sprintf("%d stages deliver every value", stages), func(t *testing.T, _ limitCase, ordered bool, opts []trimeter.Option) {
			p := newPipeline(stages, nil)
			in := newProbe(n)
			var got []int
			for v, err := range p.run(context.Background(), in.seq(), sameOpts(opts...)) {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				got = append(got, v)
			}
			want := make([]int, n)
			for i := range want {
				want[i] = p.want(i)
			}
			if !ordered {
				slices.Sort(got)
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			for s := range stages {
				if c := p.calls[s].Load(); c != n {
					t.Errorf("stage %d called %d times, want %d", s, c, n)
				}
			}
			checkCleanedUp(t, in)
		})
	}
}

func TestThenPassesAnUpstreamErrorThroughAndFailsFast(t *testing.T) {
	const n, bad = 20, 5
	for stages := 2; stages <= 4; stages++ {
		for failing := range stages {
			t.Run(fmt.Sprintf("stage %d of %d fails", failing, stages), func(t *testing.T) {
				p := newPipeline(stages, func(s, in int) bool { return s == failing && in == bad })
				in := newProbe(n)
				// One at a time and in order, the run is deterministic:
				// inputs before bad come through, then bad's error ends it.
				var got []yielded
				for v, err := range p.run(context.Background(), in.seq(), sameOpts(trimeter.MaxAtOnce(1), trimeter.Ordered())) {
					got = append(got, yielded{v, err})
				}
				if len(got) != bad+1 {
					t.Fatalf("got %d results, want %d values and then the error: %v", len(got), bad, got)
				}
				for i, y := range got[:bad] {
					if y.err != nil || y.v != p.want(i) {
						t.Errorf("result %d is (%v, %v), want (%d, nil)", i, y.v, y.err, p.want(i))
					}
				}
				var se *stageErr
				if last := got[bad].err; !errors.As(last, &se) || *se != (stageErr{failing, bad}) {
					t.Errorf("last result's error is %v, want stage %d's on input %d", last, failing, bad)
				}
				if c := p.calls[failing].Load(); c != bad+1 {
					t.Errorf("the failing stage was called %d times, want %d: it must start nothing after its error", c, bad+1)
				}
				for s := failing + 1; s < stages; s++ {
					if c := p.calls[s].Load(); c != bad {
						t.Errorf("stage %d was called %d times, want %d: an upstream error must not reach fn", s, c, bad)
					}
				}
				checkCleanedUp(t, in)
			})
		}
	}
}

func TestThenKeepsGoingPastUpstreamErrors(t *testing.T) {
	const n = 24
	// Stage 0 fails on every fourth input, stage 1 on every sixth.
	fail := func(s, in int) bool { return (s == 0 && in%4 == 1) || (s == 1 && in%6 == 2) }
	forLimitsAndOrders(t, "three keep-going stages report each failure once", func(t *testing.T, _ limitCase, ordered bool, opts []trimeter.Option) {
		p := newPipeline(3, fail)
		seen := make(map[int]bool)
		prev := -1
		for v, err := range p.run(context.Background(), newProbe(n).seq(), sameOpts(append(opts, trimeter.KeepGoing())...)) {
			in := origin(v, 3)
			var se *stageErr
			switch {
			case errors.As(err, &se):
				in = se.in
				if !fail(se.stage, in) {
					t.Errorf("unexpected %v", err)
				}
			case err != nil:
				t.Fatalf("unexpected error %v", err)
			case v != p.want(in):
				t.Errorf("got %d, want %d", v, p.want(in))
			}
			if seen[in] {
				t.Errorf("input %d reported twice", in)
			}
			seen[in] = true
			if ordered && in < prev {
				t.Errorf("input %d came after input %d under Ordered", in, prev)
			}
			prev = in
		}
		if len(seen) != n {
			t.Errorf("%d inputs reported, want %d", len(seen), n)
		}
		// Stage 1 sees the inputs stage 0 let through; stage 2 those both did.
		var pass0, pass1 int64
		for in := range n {
			if !fail(0, in) {
				pass0++
				if !fail(1, in) {
					pass1++
				}
			}
		}
		if c := p.calls[1].Load(); c != pass0 {
			t.Errorf("stage 1 called %d times, want %d", c, pass0)
		}
		if c := p.calls[2].Load(); c != pass1 {
			t.Errorf("stage 2 called %d times, want %d", c, pass1)
		}
	})
}

func TestThenKeepGoingDownstreamOfAFailFastStage(t *testing.T) {
	// Stage 0 fails fast on input 3; stage 1 keeps going: it passes the
	// error on and ends when stage 0 does.
	const bad = 3
	p := newPipeline(2, func(s, in int) bool { return s == 0 && in == bad })
	opts := func(s int) []trimeter.Option {
		if s == 0 {
			return []trimeter.Option{trimeter.MaxAtOnce(1), trimeter.Ordered()}
		}
		return []trimeter.Option{trimeter.MaxAtOnce(2), trimeter.Ordered(), trimeter.KeepGoing()}
	}
	got := collect(p.run(context.Background(), newProbe(-1).seq(), opts))
	if len(got) != bad+1 {
		t.Fatalf("got %v, want %d values and the error", got, bad)
	}
	var se *stageErr
	if !errors.As(got[bad].err, &se) || se.in != bad {
		t.Errorf("last is %v, want stage 0's error on input %d", got[bad].err, bad)
	}
}

// outcomeStage is fn of a keep-going stage: it fails on the inputs that
// fail picks, and otherwise adds step.
func outcomeStage(stage, step int, calls *atomic.Int64, fail func(v int) bool) func(context.Context, int) (int, error) {
	return func(_ context.Context, v int) (int, error) {
		calls.Add(1)
		if fail(v) {
			return 0, &stageErr{stage, v}
		}
		return v + step, nil
	}
}

func TestThenOutcomesKeepTheOriginalInput(t *testing.T) {
	const n = 30
	value := func(i int) int { return 1000 + 7*i }
	inputs := func(yield func(int) bool) {
		for i := range n {
			if !yield(value(i)) {
				return
			}
		}
	}
	forLimitsAndOrders(t, "each outcome tells its original input", func(t *testing.T, _ limitCase, ordered bool, opts []trimeter.Option) {
		var calls [3]atomic.Int64
		ctx := context.Background()
		// Stage 0 fails on inputs 0, 3, 6, ...; stage 1 on 1, 4, 7, ...
		first := trimeter.Outcomes(ctx, inputs, outcomeStage(0, 1, &calls[0], func(v int) bool { return (v-1000)/7%3 == 0 }), opts...)
		second := trimeter.ThenOutcomes(ctx, first, outcomeStage(1, 1, &calls[1], func(v int) bool { return (v-1001)/7%3 == 1 }), opts...)
		third := trimeter.ThenOutcomes(ctx, second, func(_ context.Context, v int) (string, error) {
			calls[2].Add(1)
			return fmt.Sprint(v), nil
		}, opts...)
		seen := make(map[int]bool)
		prev := -1
		for in, out := range third {
			if in.Index < 0 || in.Index >= n || in.Value != value(in.Index) {
				t.Fatalf("outcome beside input %+v, which is not one of the inputs", in)
			}
			if seen[in.Index] {
				t.Errorf("input %d reported twice", in.Index)
			}
			seen[in.Index] = true
			if ordered && in.Index < prev {
				t.Errorf("input %d came after input %d under Ordered", in.Index, prev)
			}
			prev = in.Index
			var se *stageErr
			switch wantStage := in.Index % 3; {
			case wantStage == 2:
				if v, err := out.Unwrap(); err != nil || v != fmt.Sprint(in.Value+2) {
					t.Errorf("input %d: got (%q, %v), want (%q, nil)", in.Index, v, err, fmt.Sprint(in.Value+2))
				}
			case !errors.As(out.Err, &se) || se.stage != wantStage:
				t.Errorf("input %d: got error %v, want stage %d's", in.Index, out.Err, wantStage)
			}
		}
		if len(seen) != n {
			t.Errorf("%d inputs reported, want %d", len(seen), n)
		}
		for s, want := range []int64{n, 2 * n / 3, n / 3} {
			if c := calls[s].Load(); c != want {
				t.Errorf("stage %d called %d times, want %d: a failed outcome must not reach fn", s, c, want)
			}
		}
	})
}

// stuckOnSecond is fn of a stage whose second call blocks until its
// context is cancelled; every other call passes its value on at once.
func stuckOnSecond(t *testing.T, b *blocker) func(context.Context, int) (int, error) {
	var calls atomic.Int64
	return func(ctx context.Context, v int) (int, error) {
		if calls.Add(1) == 2 {
			return 0, b.block(t, ctx)
		}
		return v, nil
	}
}

func TestThenBreakStopsEveryStage(t *testing.T) {
	for _, lastOrdered := range []bool{false, true} {
		t.Run(fmt.Sprintf("last stage ordered: %v", lastOrdered), func(t *testing.T) {
			// Every stage has one call blocked until cancelled, and room
			// for others, so values keep flowing down to the last stage
			// while the loop waits: no stage waits on its input at the
			// break for a call that only the break would end.
			var blocked [3]blocker
			in := newProbe(-1)
			ctx := context.Background()
			opts := []trimeter.Option{trimeter.MaxAtOnce(3)}
			s0 := trimeter.AMap(ctx, in.seq(), stuckOnSecond(t, &blocked[0]), opts...)
			s1 := trimeter.Then(ctx, s0, stuckOnSecond(t, &blocked[1]), opts...)
			if lastOrdered {
				opts = append(opts, trimeter.Ordered())
			}
			s2 := trimeter.Then(ctx, s1, stuckOnSecond(t, &blocked[2]), opts...)
			for _, err := range s2 {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				for s := range blocked {
					blocked[s].started.await(t, 1, fmt.Sprintf("stage %d's blocking call", s))
				}
				break
			}
			for s := range blocked {
				if c := blocked[s].cancelled.Load(); c != 1 {
					t.Errorf("stage %d: %d blocked calls saw the cancel, want 1", s, c)
				}
			}
			checkCleanedUp(t, in)
		})
	}
}

// panicAt returns fn of a stage that panics with v on input at.
func panicAt(at int, v any) func(context.Context, int) (int, error) {
	return func(_ context.Context, in int) (int, error) {
		if in == at {
			panic(v)
		}
		return in, nil
	}
}

type stagePanic struct{ stage int }

func TestThenPanicReachesTheConsumer(t *testing.T) {
	const n, at = 20, 7
	pass := func(_ context.Context, v int) (int, error) { return v, nil }
	for where := -1; where < 3; where++ {
		name := fmt.Sprintf("in stage %d", where)
		if where < 0 {
			name = "in the input"
		}
		forLimitsAndOrders(t, "a panic "+name, func(t *testing.T, _ limitCase, _ bool, opts []trimeter.Option) {
			want := stagePanic{where}
			in := newProbe(n)
			site := "panicAt"
			if where < 0 {
				in.onPull = func(i int) {
					if i == at {
						panic(want)
					}
				}
				site = "(*probe).seq"
			}
			fns := []func(context.Context, int) (int, error){pass, pass, pass}
			if where >= 0 {
				fns[where] = panicAt(at, want)
			}
			ctx := context.Background()
			out := trimeter.Then(ctx, trimeter.Then(ctx, trimeter.AMap(ctx, in.seq(), fns[0], opts...), fns[1], opts...), fns[2], opts...)
			v := catch(func() {
				for _, err := range out {
					if err != nil {
						t.Errorf("unexpected error %v", err)
					}
				}
			})
			checkPanicError(t, v, want, site)
			checkCleanedUp(t, in)
		})
	}
}

func TestThenParentCancelEndsEveryStage(t *testing.T) {
	var blocked [3]blocker
	in := newProbe(-1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Stage 0 passes two values on and blocks on the rest; stage 1 passes
	// the first and blocks on the second; stage 2 blocks on its first.
	stage := func(pass int64, b *blocker) func(context.Context, int) (int, error) {
		var calls atomic.Int64
		return func(ctx context.Context, v int) (int, error) {
			if calls.Add(1) <= pass {
				return v, nil
			}
			return 0, b.block(t, ctx)
		}
	}
	opts := []trimeter.Option{trimeter.MaxAtOnce(4)}
	s0 := trimeter.AMap(ctx, in.seq(), stage(2, &blocked[0]), opts...)
	s1 := trimeter.Then(ctx, s0, stage(1, &blocked[1]), opts...)
	s2 := trimeter.Then(ctx, s1, stage(0, &blocked[2]), opts...)
	go func() {
		blocked[0].started.await(t, 4, "stage 0's blocked calls")
		blocked[1].started.await(t, 1, "stage 1's blocked call")
		blocked[2].started.await(t, 1, "stage 2's blocked call")
		cancel()
	}()
	got := collect(s2)
	if len(got) != 1 || !errors.Is(got[0].err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled once", got)
	}
	for s, want := range []int64{4, 1, 1} {
		if c := blocked[s].cancelled.Load(); c != want {
			t.Errorf("stage %d: %d calls saw the cancel, want %d", s, c, want)
		}
	}
	checkCleanedUp(t, in)
}

// keepIf is a filter a user writes over a sequence of pairs.
func keepIf[K, V any](seq iter.Seq2[K, V], keep func(K, V) bool) iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for k, v := range seq {
			if keep(k, v) && !yield(k, v) {
				return
			}
		}
	}
}

// firstN is a take a user writes: it stops after n pairs.
func firstN[K, V any](seq iter.Seq2[K, V], n int) iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		if n <= 0 {
			return
		}
		i := 0
		for k, v := range seq {
			if !yield(k, v) {
				return
			}
			if i++; i == n {
				return
			}
		}
	}
}

func TestThenComposesWithPlainIterators(t *testing.T) {
	words := []string{"go", "iter", "range", "seq", "pull", "yield", "chan", "defer", "map", "slice"}
	var lengths atomic.Int64
	ctx := context.Background()
	upper := trimeter.AMap(ctx, slices.Values(words), func(_ context.Context, w string) (string, error) {
		return fmt.Sprintf("<%s>", w), nil
	}, trimeter.MaxAtOnce(3), trimeter.Ordered())
	long := keepIf(upper, func(w string, err error) bool { return err != nil || len(w) > 5 })
	sized := trimeter.Then(ctx, long, func(_ context.Context, w string) (int, error) {
		lengths.Add(1)
		return len(w), nil
	}, trimeter.MaxAtOnce(2), trimeter.Ordered())
	var got []int
	for n, err := range firstN(sized, 4) {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		got = append(got, n)
	}
	if want := []int{6, 7, 6, 7}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Only a window's worth (MaxAtOnce 2, plus one on its way) past the
	// fourth long word may have been sized.
	if c := lengths.Load(); c < 4 || c > 4+2+1 {
		t.Errorf("the second stage ran %d times, want 4 to 7", c)
	}
	goleak.VerifyNone(t)
}

func TestThenPullsLazilyThroughTheChain(t *testing.T) {
	cases := []struct {
		atOnce, buffer []int
	}{
		{[]int{1, 1}, []int{0, 0}},
		{[]int{3, 2}, []int{0, 1}},
		{[]int{2, 1, 4}, []int{1, 0, 2}},
		{[]int{1, 3, 2, 2}, []int{2, 0, 0, 1}},
	}
	for _, c := range cases {
		for _, ordered := range []bool{false, true} {
			t.Run(fmt.Sprintf("MaxAtOnce %v BufferSize %v ordered %v", c.atOnce, c.buffer, ordered), func(t *testing.T) {
				checkChainWindow(t, c.atOnce, c.buffer, ordered)
			})
		}
	}
}

// checkChainWindow runs a chain with the given limits over an endless
// input, and a consumer that lets the chain fill up before it takes each
// result. Every stage holds at most its window (MaxAtOnce + BufferSize)
// and has at most one more input on its way, so the first input is never
// pulled more than the sum of those beyond what the consumer received.
func checkChainWindow(t *testing.T, atOnce, buffer []int, ordered bool) {
	const results = 40
	bound := 0
	for s := range atOnce {
		bound += atOnce[s] + buffer[s] + 1
	}
	var received, over atomic.Int64
	in := newProbe(-1)
	in.onPull = func(int) {
		if excess := in.pulled.Load() - received.Load(); excess > int64(bound) {
			over.Store(excess)
		}
	}
	p := newPipeline(len(atOnce), nil)
	opts := func(s int) []trimeter.Option {
		o := []trimeter.Option{trimeter.MaxAtOnce(atOnce[s]), trimeter.BufferSize(buffer[s])}
		if ordered {
			o = append(o, trimeter.Ordered())
		}
		return o
	}
	for v, err := range p.run(context.Background(), in.seq(), opts) {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		n := received.Add(1)
		if ordered && v != p.want(int(n-1)) {
			t.Errorf("result %d is %d, want %d", n-1, v, p.want(int(n-1)))
		}
		settle(in.pulled.Load)
		if n == results {
			break
		}
	}
	if e := over.Load(); e != 0 {
		t.Errorf("%d inputs pulled beyond those received, want at most %d", e, bound)
	}
	checkCleanedUp(t, in)
}

// settle lets other goroutines run until read has returned the same value
// many times in a row, so that work in flight can reach a resting state.
// It orders nothing: tests use it only to give a bound a chance to be
// broken, never to wait for an event.
func settle(read func() int64) {
	last, same := read(), 0
	for i := 0; i < 10000 && same < 200; i++ {
		testclock.Yield()
		if v := read(); v != last {
			last, same = v, 0
		} else {
			same++
		}
	}
}

func TestThenOutcomesParentCancelIsBesideIndexMinusOne(t *testing.T) {
	// As for Outcomes, the end of ctx is one outcome beside Index -1, so
	// that it cannot be taken for input 0's.
	pass := func(_ context.Context, v int) (int, error) { return v, nil }
	for _, before := range []bool{true, false} {
		t.Run(fmt.Sprintf("cancelled before the start: %v", before), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if before {
				cancel()
			}
			var blocked blocker
			second := func(ctx context.Context, v int) (int, error) { return 0, blocked.block(t, ctx) }
			if !before {
				go func() {
					blocked.started.await(t, 1, "the blocked call")
					cancel()
				}()
			}
			var got []trimeter.Input[int]
			var errs []error
			for in, out := range trimeter.ThenOutcomes(ctx, trimeter.Outcomes(ctx, newProbe(1).seq(), pass), second) {
				got = append(got, in)
				errs = append(errs, out.Err)
			}
			if len(got) != 1 || got[0].Index != -1 || !errors.Is(errs[0], context.Canceled) {
				t.Errorf("got %+v with errors %v, want one context.Canceled beside Index -1", got, errs)
			}
		})
	}
}

type loopBodyPanic struct{}

func TestThenLoopBodyPanicWinsOverAnUpstreamPanic(t *testing.T) {
	// Stage 0 panics on input 1 while stage 1 has both its slots busy and
	// so is not pulling: the panic waits in stage 0. Then the loop body
	// panics. What comes out of the loop must be the body's own panic, as
	// it is without stages, not stage 0's, raised while the loop's panic
	// unwinds.
	mon := &throttle.Monitor{}
	goPanic := make(chan struct{})
	var blocked counter
	fn0 := func(_ context.Context, v int) (int, error) {
		if v == 1 {
			<-goPanic
			panic(stagePanic{0})
		}
		return v, nil
	}
	var calls1 atomic.Int64
	fn1 := func(ctx context.Context, v int) (int, error) {
		if calls1.Add(1) >= 2 {
			blocked.add(1)
			return 0, awaitCancel(t, ctx) // fails, rather than hangs, if no cancel comes
		}
		return v, nil
	}
	ctx := context.Background()
	s0 := trimeter.AMap(ctx, newProbe(4).seq(), fn0, trimeter.MaxAtOnce(4), trimeter.Watch(mon))
	s1 := trimeter.Then(ctx, s0, fn1, trimeter.MaxAtOnce(2))
	v := catch(func() {
		for range s1 {
			blocked.await(t, 2, "stage 1's blocked calls")
			close(goPanic)
			eventually(t, func() bool { return mon.Stats().Finished == 4 }, "stage 0's panic recorded")
			panic(loopBodyPanic{})
		}
	})
	if pe, ok := v.(*trimeter.PanicError); ok {
		t.Errorf("the loop recovered stage 0's PanicError (value %v), want its own panic value", pe.Value)
	} else if v != (loopBodyPanic{}) {
		t.Errorf("the loop recovered %v, want its own panic value", v)
	}
	goleak.VerifyNone(t)
}

// An input that goes on yielding after yield returned false is a bug in the
// input; a break raises it as a panic in the loop, as a range loop over
// the input would, on every path, and does not spin for ever.
func TestThenInputThatIgnoresABreakPanics(t *testing.T) {
	endless := func(yield func(int, error) bool) {
		for i := 0; ; i++ {
			yield(i, nil)
		}
	}
	double := func(_ context.Context, v int) (int, error) { return 2 * v, nil }
	for _, lc := range limitCases {
		t.Run(lc.name, func(t *testing.T) {
			ended := make(chan any, 1)
			go func() {
				ended <- catch(func() {
					for range trimeter.Then(context.Background(), endless, double, lc.opts...) {
						break
					}
				})
			}()
			select {
			case v := <-ended:
				pe, ok := v.(*trimeter.PanicError)
				if !ok || !strings.Contains(fmt.Sprint(pe.Value), "continued iteration") {
					t.Fatalf("the loop ended with %v, want a *PanicError saying the input continued iteration", v)
				}
			case <-time.After(patience):
				t.Fatal("the break did not return")
			}
			goleak.VerifyNone(t)
		})
	}
}

// The end of the stage before's own run (its outcome beside Index -1)
// ends a ThenOutcomes stage whose own ctx goes on: its call in flight is
// cancelled, the outcomes it had not yielded are dropped, and the loop
// gets that outcome once, as the last.
func TestThenOutcomesEndsWithTheStageBefore(t *testing.T) {
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	pass := func(_ context.Context, v int) (int, error) { return v, nil }
	var sawCancel atomic.Bool
	second := func(ctx context.Context, v int) (int, error) {
		if v == 0 {
			cancel1() // ends the first stage's run
			awaitCancel(t, ctx)
			sawCancel.Store(true)
			return 0, ctx.Err()
		}
		return v, nil
	}
	var got []trimeter.Input[int]
	var errs []error
	// The input of the first stage gives 0, and then the rest only once
	// its run's ctx has ended: so that run cannot end of itself, with all
	// three delivered, before input 0's call ends it.
	inputs := func(yield func(int) bool) {
		if !yield(0) {
			return
		}
		awaitCancel(t, ctx1)
		for v := 1; v < 3; v++ {
			if !yield(v) {
				return
			}
		}
	}
	stage1 := trimeter.Outcomes(ctx1, inputs, pass, trimeter.MaxAtOnce(1))
	// Two slots: the stage pulls the end of the stage before while input
	// 0's call waits (with one, that call would hold the only worker).
	for in, out := range trimeter.ThenOutcomes(context.Background(), stage1, second, trimeter.MaxAtOnce(2)) {
		got = append(got, in)
		errs = append(errs, out.Err)
	}
	if !sawCancel.Load() {
		t.Error("the call in flight was not cancelled")
	}
	if n := len(got); n == 0 || got[n-1].Index != -1 || !errors.Is(errs[n-1], context.Canceled) {
		t.Fatalf("got %+v with errors %v, want context.Canceled beside Index -1 last", got, errs)
	}
	for i, in := range got[:len(got)-1] {
		if in.Index == 0 {
			t.Errorf("input 0's outcome (%v) was yielded: its call was cancelled by the end", errs[i])
		}
	}
}

// The end of the stage before ends ThenOutcomes at once even when its
// outcome is pulled while inputs wait aside for their key (PerKey, with
// Ordered keeping the last slot for the earliest of them): the call in
// flight is cancelled then, not once it returns of itself.
func TestThenOutcomesEndsWithTheStageBeforeWhileInputsWaitAside(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	inputs := func(yield func(int) bool) {
		if yield(0) && yield(1) {
			awaitCancel(t, ctx1)
		}
	}
	pass := func(_ context.Context, v int) (int, error) { return v, nil }
	stage1 := trimeter.Outcomes(ctx1, inputs, pass, trimeter.MaxAtOnce(1))

	mon := &throttle.Monitor{}
	var b blocker
	second := func(ctx context.Context, v int) (int, error) {
		if v == 0 {
			return 0, b.block(t, ctx)
		}
		return v, nil
	}
	go func() {
		b.started.await(t, 1, "input 0's call")
		eventually(t, func() bool { return mon.Stats().Waiting == 1 }, "input 1 waiting for its key")
		cancel1()
	}()
	var got []trimeter.Input[int]
	var errs []error
	sameKey := trimeter.PerKey(func(int) string { return "k" }, trimeter.MaxAtOnce(1))
	for in, out := range trimeter.ThenOutcomes(context.Background(), stage1, second,
		trimeter.MaxAtOnce(2), trimeter.Ordered(), sameKey, trimeter.Watch(mon)) {
		got = append(got, in)
		errs = append(errs, out.Err)
	}
	if b.cancelled.Load() != 1 {
		t.Error("the call in flight was not cancelled by the end of the stage before")
	}
	if n := len(got); n == 0 || got[n-1].Index != -1 || !errors.Is(errs[n-1], context.Canceled) {
		t.Errorf("got %+v with errors %v, want context.Canceled beside Index -1 last", got, errs)
	}
}

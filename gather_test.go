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
	"github.com/trimeter-go/trimeter/throttle"
)

// funcs turns fns into the input of RunAll and RunAny, counting the
// functions pulled.
func funcs[R any](pulled *atomic.Int64, fns ...func(context.Context) (R, error)) iter.Seq[func(context.Context) (R, error)] {
	return func(yield func(func(context.Context) (R, error)) bool) {
		for _, f := range fns {
			pulled.Add(1)
			if !yield(f) {
				return
			}
		}
	}
}

func TestRunAllKeepsInputOrder(t *testing.T) {
	const n = 30
	for _, lc := range limitCases {
		for seed := uint64(1); seed <= 2; seed++ {
			t.Run(fmt.Sprintf("results of random durations come in input order %s (seed %d)", lc.name, seed), func(t *testing.T) {
				clk := newFakeClock()
				stop := drive(clk, time.Millisecond)
				defer stop()
				ds := durations(seed, n, time.Millisecond, 20)
				got, err := trimeter.RunAll(context.Background(), tasks(newProbe(n).seq(), func(_ context.Context, v int) (int, error) {
					clk.Sleep(ds[v])
					return 10 * v, nil
				}), lc.opts...)
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				for i, v := range got {
					if v != 10*i {
						t.Fatalf("got %v, want 0, 10, ... %d in input order", got, 10*(n-1))
					}
				}
				if len(got) != n {
					t.Errorf("got %d results, want %d", len(got), n)
				}
			})
		}
	}
}

func TestRunAllWithNoFunctions(t *testing.T) {
	var pulled atomic.Int64
	got, err := trimeter.RunAll(context.Background(), funcs[int](&pulled))
	if len(got) != 0 || err != nil {
		t.Errorf("got %v, %v; want no results and no error", got, err)
	}
}

func TestRunAllFailFast(t *testing.T) {
	const n = 6
	for _, lc := range limitCases {
		t.Run("the first error cancels the rest and comes without results "+lc.name, func(t *testing.T) {
			k := below(lc.atOnce, 2)
			var b blocker
			got, err := trimeter.RunAll(context.Background(), tasks(newProbe(n).seq(), func(ctx context.Context, v int) (int, error) {
				if v == k {
					b.started.await(t, k, "calls blocked")
					return 0, errBoom
				}
				return 0, b.block(t, ctx)
			}), lc.opts...)
			if got != nil || err != errBoom {
				t.Errorf("got %v, %v; want no results and %v", got, err, errBoom)
			}
			b.checkAllCancelled(t)
			goleak.VerifyNone(t)
		})
	}
}

func TestRunAllKeepGoing(t *testing.T) {
	const n = 12
	for _, lc := range limitCases {
		t.Run("every function runs and the failures are joined in input order "+lc.name, func(t *testing.T) {
			clk := newFakeClock()
			stop := drive(clk, time.Millisecond)
			defer stop()
			ds := durations(5, n, time.Millisecond, 20)
			got, err := trimeter.RunAll(context.Background(), tasks(newProbe(n).seq(), func(_ context.Context, v int) (int, error) {
				clk.Sleep(ds[v])
				if v%2 == 1 {
					return -1, oddError{v}
				}
				return 10 * v, nil
			}), append(slices.Clone(lc.opts), trimeter.KeepGoing())...)
			want := []int{0, 0, 20, 0, 40, 0, 60, 0, 80, 0, 100, 0}
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v: zero values where a function failed", got, want)
			}
			checkItemErrors(t, err, []int{1, 3, 5, 7, 9, 11})
		})
	}
}

func TestRunAllPanic(t *testing.T) {
	for _, lc := range limitCases {
		t.Run("a panic reaches the caller once the other calls ended "+lc.name, func(t *testing.T) {
			k := below(lc.atOnce, 2)
			var b blocker
			r := catch(func() {
				_, _ = trimeter.RunAll(context.Background(), tasks(newProbe(5).seq(), func(ctx context.Context, v int) (int, error) {
					if v == k {
						b.started.await(t, k, "calls blocked")
						detonate(v)
					}
					return 0, b.block(t, ctx)
				}), lc.opts...)
			})
			checkPanicError(t, r, boomValue{k}, "detonate")
			b.checkAllCancelled(t)
			goleak.VerifyNone(t)
		})
	}
}

func TestRunAllParentCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var b blocker
	got, err := trimeter.RunAll(ctx, tasks(newProbe(5).seq(), func(ctx context.Context, v int) (int, error) {
		if v == 2 {
			cancel()
		}
		return 0, b.block(t, ctx)
	}), trimeter.MaxAtOnce(3))
	if got != nil || err != context.Canceled {
		t.Errorf("got %v, %v; want no results and context.Canceled", got, err)
	}
	b.checkAllCancelled(t)
	goleak.VerifyNone(t)
}

func TestRunAnyFirstSuccessCancelsTheRest(t *testing.T) {
	var b blocker
	slow := func(ctx context.Context) (string, error) { return "", b.block(t, ctx) }
	winner := func(context.Context) (string, error) {
		b.started.await(t, 2, "slow calls started")
		return "winner", nil
	}
	var pulled atomic.Int64
	got, err := trimeter.RunAny(context.Background(), funcs(&pulled, slow, winner, slow))
	if got != "winner" || err != nil {
		t.Errorf("got %q, %v; want \"winner\", nil", got, err)
	}
	if b.started.load() != 2 {
		t.Errorf("%d slow calls started, want 2", b.started.load())
	}
	b.checkAllCancelled(t)
	goleak.VerifyNone(t)
}

func TestRunAnyStopsPullingAtTheFirstSuccess(t *testing.T) {
	// The worker that records the success would otherwise pull and start
	// the next function before the caller had the result: run it often.
	for range 200 {
		var calls atomic.Int64
		fail := func(context.Context) (int, error) { calls.Add(1); return 0, errBoom }
		succeed := func(context.Context) (int, error) { calls.Add(1); return 7, nil }
		var pulled atomic.Int64
		got, err := trimeter.RunAny(context.Background(), funcs(&pulled, fail, fail, succeed, fail, fail, fail, fail), trimeter.MaxAtOnce(1))
		if got != 7 || err != nil {
			t.Fatalf("got %v, %v; want 7, nil", got, err)
		}
		if c, p := calls.Load(), pulled.Load(); c != 3 || p != 3 {
			t.Fatalf("%d calls, %d functions pulled; want 3 of each: nothing starts after the first success", c, p)
		}
	}
	goleak.VerifyNone(t)
}

func TestRunAnyStartsNothingAfterTheFirstSuccess(t *testing.T) {
	for _, lc := range limitCases {
		if lc.atOnce < 2 {
			continue // one at a time: above; no limit: everything starts at once
		}
		t.Run("the slot a success frees starts nothing "+lc.name, func(t *testing.T) {
			for range 50 {
				var b blocker
				var late atomic.Int64
				slow := func(ctx context.Context) (string, error) { return "", b.block(t, ctx) }
				winner := func(context.Context) (string, error) {
					b.started.await(t, lc.atOnce-1, "slow calls started")
					return "winner", nil
				}
				after := func(context.Context) (string, error) { late.Add(1); return "late", nil }
				var fns []func(context.Context) (string, error)
				for range lc.atOnce - 1 {
					fns = append(fns, slow)
				}
				fns = append(fns, winner, after, after, after)
				var pulled atomic.Int64
				got, err := trimeter.RunAny(context.Background(), funcs(&pulled, fns...), lc.opts...)
				if got != "winner" || err != nil {
					t.Fatalf("got %q, %v; want \"winner\", nil", got, err)
				}
				if n := late.Load(); n != 0 {
					t.Fatalf("%d functions started after the first success, want 0", n)
				}
				b.checkAllCancelled(t)
			}
			goleak.VerifyNone(t)
		})
	}
}

// A success recorded before the parent context ends is RunAny's answer,
// even when the context ends before the caller has it; a context that
// ended before the success was recorded is the call's end.
func TestRunAnyAnswerAndAParentCancel(t *testing.T) {
	for _, lc := range limitCases {
		t.Run("a cancel before the success returns ctx.Err() "+lc.name, func(t *testing.T) {
			for range 50 {
				ctx, cancel := context.WithCancel(context.Background())
				fail := func(context.Context) (int, error) { return 0, errBoom }
				succeed := func(context.Context) (int, error) { cancel(); return 7, nil }
				var pulled atomic.Int64
				got, err := trimeter.RunAny(ctx, funcs(&pulled, fail, succeed), lc.opts...)
				cancel()
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("got %v, %v; want context.Canceled: the context ended before the success", got, err)
				}
			}
			goleak.VerifyNone(t)
		})
		if lc.atOnce == 1 {
			continue // the cancel below comes from a call running beside the winner
		}
		t.Run("a cancel after the success returns the success "+lc.name, func(t *testing.T) {
			for range 50 {
				ctx, cancel := context.WithCancel(context.Background())
				started := make(chan struct{})
				// The success's stop cancels this call, which then
				// cancels the parent: after the success was recorded.
				other := func(callCtx context.Context) (int, error) {
					close(started)
					<-callCtx.Done()
					cancel()
					return 0, callCtx.Err()
				}
				succeed := func(context.Context) (int, error) { <-started; return 7, nil }
				var pulled atomic.Int64
				got, err := trimeter.RunAny(ctx, funcs(&pulled, other, succeed), lc.opts...)
				cancel()
				if got != 7 || err != nil {
					t.Fatalf("got %v, %v; want 7, nil: the success came before the cancel", got, err)
				}
			}
			goleak.VerifyNone(t)
		})
	}
}

// gatedTrier grants every permit, but its n-th TryAcquire, once it has
// closed entered, waits for gate to close: the run stops meanwhile.
type gatedTrier struct {
	n       int64
	calls   atomic.Int64
	entered chan struct{}
	gate    chan struct{}
}

func newGatedTrier(n int64) *gatedTrier {
	return &gatedTrier{n: n, entered: make(chan struct{}), gate: make(chan struct{})}
}

func (m *gatedTrier) Acquire(ctx context.Context) (throttle.Permit, error) {
	p, _, err := m.TryAcquire(ctx)
	return p, err
}

func (m *gatedTrier) TryAcquire(context.Context) (throttle.Permit, time.Duration, error) {
	if m.calls.Add(1) == m.n {
		close(m.entered)
		<-m.gate
	}
	return nopPermit{}, 0, nil
}

// A task whose meter grants its permit after the run stopped (RunAny's
// answer came, or a failure) does not start.
func TestNothingStartsOnAPermitGrantedAfterTheStop(t *testing.T) {
	for name, lim := range map[string][]trimeter.Option{"MaxAtOnce(3)": {trimeter.MaxAtOnce(3)}, "no MaxAtOnce": nil} {
		t.Run("RunAny with "+name, func(t *testing.T) {
			m := newGatedTrier(3)
			var late atomic.Int64
			blocked := func(ctx context.Context) (int, error) {
				awaitCancel(t, ctx) // the stop cancels it
				close(m.gate)
				return 0, ctx.Err()
			}
			winner := func(context.Context) (int, error) { <-m.entered; return 7, nil }
			after := func(context.Context) (int, error) { late.Add(1); return 8, nil }
			var pulled atomic.Int64
			got, err := trimeter.RunAny(context.Background(), funcs(&pulled, blocked, winner, after), append(slices.Clone(lim), trimeter.WithMeter(m))...)
			if got != 7 || err != nil {
				t.Errorf("got %v, %v; want 7, nil", got, err)
			}
			if n := late.Load(); n != 0 {
				t.Errorf("%d functions started on a permit granted after the answer, want 0", n)
			}
			goleak.VerifyNone(t)
		})
		t.Run("fail-fast RunOnEach with "+name, func(t *testing.T) {
			m := newGatedTrier(3)
			var late atomic.Int64
			fn := func(ctx context.Context, v int) error {
				switch v {
				case 0:
					awaitCancel(t, ctx)
					close(m.gate)
					return ctx.Err()
				case 1:
					<-m.entered
					return errBoom
				}
				late.Add(1)
				return nil
			}
			err := trimeter.RunOnEach(context.Background(), newProbe(5).seq(), fn, append(slices.Clone(lim), trimeter.WithMeter(m))...)
			if !errors.Is(err, errBoom) {
				t.Errorf("RunOnEach = %v, want errBoom", err)
			}
			if n := late.Load(); n != 0 {
				t.Errorf("%d tasks started on a permit granted after the failure, want 0", n)
			}
			goleak.VerifyNone(t)
		})
	}
}

func TestRunAnyAllFail(t *testing.T) {
	errs := []error{errors.New("mirror 0 down"), errors.New("mirror 1 down"), errors.New("mirror 2 down")}
	// They fail last to first; the joined errors still come in their order.
	failed := []chan struct{}{make(chan struct{}), make(chan struct{}), make(chan struct{})}
	failWith := func(i int) func(context.Context) (int, error) {
		return func(context.Context) (int, error) {
			if i+1 < len(failed) {
				<-failed[i+1]
			}
			close(failed[i])
			return 0, errs[i]
		}
	}
	var pulled atomic.Int64
	_, err := trimeter.RunAny(context.Background(), funcs(&pulled, failWith(0), failWith(1), failWith(2)), trimeter.MaxAtOnce(3))
	for _, e := range errs {
		if !errors.Is(err, e) {
			t.Errorf("error %v does not join %v", err, e)
		}
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("got %v, want a joined error", err)
	}
	var indexes []int
	for _, e := range joined.Unwrap() {
		var ie *trimeter.ItemError
		if !errors.As(e, &ie) || ie.Err != errs[ie.Index] {
			t.Errorf("joined error %v is not an ItemError with its function's index", e)
			continue
		}
		indexes = append(indexes, ie.Index)
	}
	if !slices.Equal(indexes, []int{0, 1, 2}) {
		t.Errorf("errors at indexes %v, want 0, 1 and 2 in this order", indexes)
	}
}

func TestRunAnyWithNoFunctions(t *testing.T) {
	var pulled atomic.Int64
	if _, err := trimeter.RunAny(context.Background(), funcs[int](&pulled)); !errors.Is(err, trimeter.ErrNoTasks) {
		t.Errorf("got %v, want ErrNoTasks", err)
	}
}

func TestRunAnyPanic(t *testing.T) {
	var b blocker
	slow := func(ctx context.Context) (int, error) { return 0, b.block(t, ctx) }
	bomb := func(context.Context) (int, error) {
		b.started.await(t, 2, "slow calls started")
		detonate(9)
		return 0, nil
	}
	var pulled atomic.Int64
	r := catch(func() { _, _ = trimeter.RunAny(context.Background(), funcs(&pulled, slow, slow, bomb)) })
	checkPanicError(t, r, boomValue{9}, "detonate")
	b.checkAllCancelled(t)
	goleak.VerifyNone(t)
}

func TestRunAnyParentCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var b blocker
	slow := func(ctx context.Context) (int, error) { return 0, b.block(t, ctx) }
	quitter := func(ctx context.Context) (int, error) {
		b.started.await(t, 2, "slow calls started")
		cancel()
		return 0, b.block(t, ctx)
	}
	var pulled atomic.Int64
	if _, err := trimeter.RunAny(ctx, funcs(&pulled, slow, slow, quitter)); err != context.Canceled {
		t.Errorf("got %v, want context.Canceled", err)
	}
	b.checkAllCancelled(t)
	goleak.VerifyNone(t)
}

// RunAny returns the first success to finish, Ordered or not.
func TestRunAnyIgnoresOrdered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), patience) // a watchdog
	defer cancel()
	slow := func(ctx context.Context) (string, error) { <-ctx.Done(); return "slow", ctx.Err() }
	fast := func(context.Context) (string, error) { return "fast", nil }
	got, err := trimeter.RunAny(ctx, slices.Values([]func(context.Context) (string, error){slow, fast}), trimeter.Ordered())
	if got != "fast" || err != nil {
		t.Fatalf("RunAny = %q, %v; want the first to finish, fast", got, err)
	}
}

// A nil function among the functions is a failure, not a panic, and its
// error says which one it is, even where it ends the run without an
// ItemError's index.
func TestRunAllAndRunAnyReportANilFunction(t *testing.T) {
	one := func(context.Context) (int, error) { return 1, nil }
	_, err := trimeter.RunAll(context.Background(), slices.Values([]func(context.Context) (int, error){one, one, nil, one}), trimeter.MaxAtOnce(1))
	if want := "trimeter: function 2 of fns is nil"; err == nil || err.Error() != want {
		t.Errorf("RunAll = %v, want %q", err, want)
	}
	_, err = trimeter.RunAny(context.Background(), slices.Values([]func(context.Context) (int, error){nil}))
	var ie *trimeter.ItemError
	if !errors.As(err, &ie) || ie.Index != 0 || !strings.Contains(err.Error(), "function 0 of fns is nil") {
		t.Errorf("RunAny = %v, want input 0's nil function error", err)
	}
}

// stubborn is a function that sees its context end and then goes on until
// release is closed, as a call that ignores its context does; cancelled
// is closed when it saw the end, and returned is set as it returns.
type stubborn struct {
	cancelled, release chan struct{}
	returned           atomic.Bool
}

func newStubborn() *stubborn {
	return &stubborn{cancelled: make(chan struct{}), release: make(chan struct{})}
}

func (s *stubborn) call(t *testing.T) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		awaitCancel(t, ctx)
		close(s.cancelled)
		<-s.release
		s.returned.Store(true)
		return 0, ctx.Err()
	}
}

// letGo releases the call once it has seen its context end, after a
// moment in which a RunAll or RunAny that did not wait for it would have
// returned.
func (s *stubborn) letGo(t *testing.T) {
	select {
	case <-s.cancelled:
	case <-time.After(patience):
		t.Error("the call's context did not end")
	}
	time.Sleep(10 * time.Millisecond)
	close(s.release)
}

// RunAny answers only once the calls it cancelled have returned, and RunAll
// returns at its context's end only once its calls have.
func TestRunAllAndRunAnyReturnOnceTheirCallsHaveReturned(t *testing.T) {
	t.Run("RunAny", func(t *testing.T) {
		s := newStubborn()
		fast := func(context.Context) (int, error) { return 2, nil }
		go s.letGo(t)
		got, err := trimeter.RunAny(context.Background(), slices.Values([]func(context.Context) (int, error){s.call(t), fast}))
		if got != 2 || err != nil {
			t.Errorf("RunAny = %d, %v; want 2", got, err)
		}
		if !s.returned.Load() {
			t.Error("RunAny answered before the call it cancelled had returned")
		}
	})
	t.Run("RunAll", func(t *testing.T) {
		s := newStubborn()
		ctx, cancel := context.WithCancel(context.Background())
		started := func(context.Context) (int, error) { cancel(); return 1, nil }
		go s.letGo(t)
		_, err := trimeter.RunAll(ctx, slices.Values([]func(context.Context) (int, error){s.call(t), started}))
		if err != context.Canceled {
			t.Errorf("RunAll = %v, want context.Canceled", err)
		}
		if !s.returned.Load() {
			t.Error("RunAll returned at its context's end before its call had returned")
		}
	})
}

package trimeter_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/internal/testclock"
	"go.uber.org/goleak"
)

// watchedParent is a parent context of a type the context package knows
// nothing of: it hears of its end from a goroutine of its own, a moment
// after Done is closed, and that moment may come after a run has seen the
// end and returned.
type watchedParent struct {
	context.Context // Background: no deadline, no values
	done            chan struct{}

	mu  sync.Mutex
	err error
}

func newWatchedParent() *watchedParent {
	return &watchedParent{Context: context.Background(), done: make(chan struct{})}
}

func (p *watchedParent) Done() <-chan struct{} { return p.done }

func (p *watchedParent) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// end sets the error and closes Done at one time, as far as Err can tell.
func (p *watchedParent) end(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
	close(p.done)
}

// heldParent is a parent context that the test ends by hand, and whose
// end reaches the contexts made from it only when the test lets it
// (release): a run then sees the parent's Done closed before the context
// it gave to fn has been cancelled by it, as it may with any parent.
type heldParent struct {
	*watchedParent
	funcs []func() // under mu
}

func newHeldParent() *heldParent { return &heldParent{watchedParent: newWatchedParent()} }

// AfterFunc is how the context package hears of the parent's end.
func (p *heldParent) AfterFunc(f func()) (stop func() bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.funcs = append(p.funcs, f)
	return func() bool { return false }
}

// release calls what AfterFunc registered, in the order given.
func (p *heldParent) release() {
	p.mu.Lock()
	fs := p.funcs
	p.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// When the parent context ends, fn's context reports the parent's error
// and cause, as a context made from the parent does, even when the run
// sees the end first: a deadline is context.DeadlineExceeded, not a
// cancel of the run's own.
func TestFnContextReportsTheParentsEnd(t *testing.T) {
	// With MaxAtOnce above 1 and no meter, RunOnEach's own goroutine
	// ranges over the input: a yield that returns false tells that the
	// run has seen the parent's end.
	for _, lc := range []struct {
		name string
		opts []trimeter.Option
	}{
		{"RunOnEach", []trimeter.Option{trimeter.MaxAtOnce(2)}},
		{"RunOnEach with a buffer", []trimeter.Option{trimeter.MaxAtOnce(2), trimeter.BufferSize(4)}},
	} {
		t.Run(lc.name, func(t *testing.T) {
			parent := newHeldParent()
			started := make(chan struct{})
			next := make(chan struct{})
			refused := make(chan struct{})
			seq := func(yield func(int) bool) {
				if !yield(0) {
					return
				}
				<-next
				if !yield(1) {
					close(refused) // the run has seen the parent's end
				}
			}
			type seen struct{ err, cause error }
			got := make(chan seen, 1)
			fn := func(ctx context.Context, v int) error {
				if v != 0 {
					t.Errorf("input %d started after the parent ended", v)
					return nil
				}
				close(started)
				awaitCancel(t, ctx)
				got <- seen{ctx.Err(), context.Cause(ctx)}
				return ctx.Err()
			}
			ret := make(chan error, 1)
			go func() { ret <- trimeter.RunOnEach(parent, seq, fn, lc.opts...) }()
			<-started
			parent.end(context.DeadlineExceeded)
			close(next)
			<-refused
			select {
			case s := <-got:
				t.Fatalf("fn's context ended (%v, cause %v) before the parent's end reached it", s.err, s.cause)
			default:
			}
			parent.release()
			s := <-got
			if s.err != context.DeadlineExceeded || s.cause != context.DeadlineExceeded {
				t.Errorf("fn's context: Err %v, Cause %v; want context.DeadlineExceeded for both", s.err, s.cause)
			}
			if err := <-ret; !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("RunOnEach returned %v, want context.DeadlineExceeded", err)
			}
		})
	}
}

// The same with a parent cancelled with a cause: fn's context has it.
func TestFnContextHasTheParentsCause(t *testing.T) {
	cause := errors.New("shutting down")
	for range 50 {
		ctx, cancel := context.WithCancelCause(context.Background())
		// Contexts made from ctx before the run: the context package
		// cancels them one by one, so the run's own callback may come
		// before fn's context is reached.
		for range 200 {
			_, stop := context.WithCancel(ctx)
			defer stop()
		}
		started := make(chan struct{})
		var got error
		fn := func(ctx context.Context, v int) error {
			if v == 0 {
				close(started)
				awaitCancel(t, ctx)
				got = context.Cause(ctx)
			}
			return nil
		}
		done := make(chan error, 1)
		go func() {
			done <- trimeter.RunOnEach(ctx, func(yield func(int) bool) {
				for i := 0; yield(i); i++ {
				}
			}, fn, trimeter.MaxAtOnce(2))
		}()
		<-started
		cancel(cause)
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("RunOnEach returned %v, want context.Canceled", err)
		}
		if got != cause {
			t.Fatalf("context.Cause in fn = %v, want the parent's cause", got)
		}
	}
}

// Under fail-fast, the calls that the first error cancels see it as their
// context's cause, as errgroup.WithContext gives it.
func TestFnContextCauseIsTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	for _, lc := range limitCases {
		if lc.atOnce == 1 {
			continue // one call at a time: none is in flight to cancel
		}
		t.Run(lc.name, func(t *testing.T) {
			started := make(chan struct{})
			var got error
			fn := func(ctx context.Context, v int) error {
				switch v {
				case 0:
					close(started)
					awaitCancel(t, ctx)
					got = context.Cause(ctx)
					return ctx.Err()
				case 1:
					<-started
					return boom
				}
				return nil
			}
			err := trimeter.RunOnEach(context.Background(), newProbe(2).seq(), fn, lc.opts...)
			if !errors.Is(err, boom) {
				t.Fatalf("RunOnEach returned %v, want boom", err)
			}
			if got != boom {
				t.Errorf("context.Cause in the cancelled call = %v, want boom", got)
			}
		})
	}
}

// A failure that comes after the parent ended, before its end reached
// fn's context, does not cancel that context with the failure: the calls
// still see the parent's error, which is also the run's.
func TestFnContextKeepsTheParentsEndOverALaterFailure(t *testing.T) {
	parent := newHeldParent()
	started := make(chan struct{}, 2)
	fail := make(chan struct{})
	refused := make(chan struct{})
	seq := func(yield func(int) bool) {
		if yield(0) && !yield(1) {
			close(refused) // input 1's slot was not given back: the run stopped
		}
	}
	var got error
	fn := func(ctx context.Context, v int) error {
		started <- struct{}{}
		if v == 1 {
			<-fail
			return errBoom
		}
		awaitCancel(t, ctx)
		got = ctx.Err()
		return ctx.Err()
	}
	ret := make(chan error, 1)
	go func() { ret <- trimeter.RunOnEach(parent, seq, fn, trimeter.MaxAtOnce(2)) }()
	<-started
	<-started
	parent.end(context.DeadlineExceeded)
	close(fail)
	<-refused // the failure has been through failSoon and finish
	parent.release()
	if err := <-ret; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("RunOnEach returned %v, want context.DeadlineExceeded", err)
	}
	if got != context.DeadlineExceeded {
		t.Errorf("input 0's call saw %v, want context.DeadlineExceeded", got)
	}
}

// Once the run has stopped for the parent's end, it makes no further
// attempt and waits out no backoff, even before the end has reached fn's
// context.
func TestNoRetryAfterTheParentEnded(t *testing.T) {
	for name, pushed := range map[string]bool{"a push-back": true, "an error and a one-hour backoff": false} {
		t.Run(name, func(t *testing.T) {
			parent := newHeldParent()
			started := make(chan struct{})
			next := make(chan struct{})
			refused := make(chan struct{})
			fail := make(chan struct{})
			seq := func(yield func(int) bool) {
				if !yield(0) {
					return
				}
				<-next
				if !yield(1) {
					close(refused)
				}
			}
			var attempts atomic.Int64
			fn := func(ctx context.Context, v int) error {
				if attempts.Add(1) == 1 {
					close(started)
					<-fail
				}
				if pushed {
					return trimeter.Pushback(0, errBoom)
				}
				return errBoom
			}
			clk := newFakeClock()
			ret := make(chan error, 1)
			go func() {
				ret <- trimeter.RunOnEach(parent, seq, fn, trimeter.MaxAtOnce(2), trimeter.Retry(3),
					trimeter.Backoff(time.Hour, time.Hour), trimeter.WithClock(clk))
			}()
			<-started
			parent.end(context.DeadlineExceeded)
			close(next)
			<-refused // the run has stopped
			close(fail)
			select {
			case err := <-ret: // it need not wait for the end to reach fn's context
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("RunOnEach returned %v, want context.DeadlineExceeded", err)
				}
			case <-time.After(patience): // a watchdog: the backoff is an hour on a clock no one moves
				t.Fatal("RunOnEach did not return: it waits out a retry's backoff after the run stopped")
			}
			parent.release()
			if n := attempts.Load(); n != 1 {
				t.Errorf("input 0 was attempted %d times, want once: the run had stopped", n)
			}
		})
	}
}

// A call that returns at once when the parent's end reaches its context is
// not run again: fn's context ends before the run's own waits are told,
// and the run must count it as stopped from that moment. Contexts made
// from fn's context widen that moment: the context package cancels them,
// and the run's, one by one.
func TestNoRetryOnceFnSawTheParentEnd(t *testing.T) {
	for range 20 {
		parent, cancel := context.WithCancel(context.Background())
		var attempts, started atomic.Int64
		all := make(chan struct{})
		var mu sync.Mutex
		var stops []context.CancelFunc // called after the run: a stop in fn would wait for the cancelling to end
		fn := func(ctx context.Context, v int) error {
			for range 50 {
				_, stop := context.WithCancel(ctx)
				mu.Lock()
				stops = append(stops, stop)
				mu.Unlock()
			}
			attempts.Add(1)
			if started.Add(1) == 4 {
				close(all)
			}
			awaitCancel(t, ctx)
			return trimeter.Pushback(0, errBoom)
		}
		ret := make(chan error, 1)
		go func() {
			ret <- trimeter.RunOnEach(parent, slices.Values([]int{0, 1, 2, 3}), fn, trimeter.MaxAtOnce(4), trimeter.Retry(3))
		}()
		<-all
		cancel()
		err := <-ret
		for _, stop := range stops {
			stop()
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("RunOnEach returned %v, want context.Canceled", err)
		}
		if n := attempts.Load(); n != 4 {
			t.Fatalf("%d attempts, want 4: none is retried once the parent has ended", n)
		}
	}
}

// A task is not retried once the parent's Done has closed, on every path,
// even before the run's own contexts hear of the end (a parent the context
// package does not know tells them from a goroutine of its own): with no
// backoff, or a push-back of no time, a retry would otherwise follow at
// once.
func TestNoRetryOnceTheParentsDoneClosed(t *testing.T) {
	const runs = 100
	for _, lc := range limitCases {
		for _, pushback := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, push-back %v", lc.name, pushback), func(t *testing.T) {
				for range runs {
					parent := newWatchedParent()
					var attempts atomic.Int64
					fn := func(context.Context, int) error {
						if attempts.Add(1) == 1 {
							parent.end(context.Canceled)
						}
						if pushback {
							return trimeter.Pushback(0, errBoom)
						}
						return errBoom
					}
					err := trimeter.RunOnEach(parent, newProbe(1).seq(), fn, append(slices.Clone(lc.opts), trimeter.Retry(5), noBackoff)...)
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("RunOnEach returned %v, want context.Canceled", err)
					}
					if n := attempts.Load(); n != 1 {
						t.Fatalf("%d attempts, want 1: none is retried once the parent's Done has closed", n)
					}
				}
			})
		}
	}
}

// A backoff between attempts ends when the parent's Done closes, whether
// or not the parent has told the run's own contexts yet.
func TestBackoffEndsWhenTheParentsDoneCloses(t *testing.T) {
	parent := newHeldParent()
	defer parent.release()
	clock := newFakeClock()
	fn := func(context.Context, int) error { return errBoom }
	ret := make(chan error, 1)
	go func() {
		ret <- trimeter.RunOnEach(parent, newProbe(1).seq(), fn, trimeter.MaxAtOnce(1), trimeter.Retry(3),
			trimeter.Backoff(time.Hour, time.Hour), trimeter.WithClock(clock))
	}()
	clock.BlockUntilContext(context.Background(), 1) // the backoff after the first attempt
	parent.end(context.Canceled)
	select {
	case err := <-ret:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("RunOnEach returned %v, want context.Canceled", err)
		}
	case <-time.After(patience):
		t.Fatalf("RunOnEach still waits out its backoff %v after the parent's Done closed", patience)
	}
}

// When the parent ends before the run shuts down, the contexts the calls
// were given end with the parent's error and cause, even when that end
// reaches them only after the run has returned: the run's own cancel
// must not get there first.
func TestFnContextEndsWithTheParentsEndAfterTheRun(t *testing.T) {
	const runs = 50
	for _, lc := range limitCases {
		t.Run("AMap "+lc.name, func(t *testing.T) {
			for range runs {
				parent := newWatchedParent()
				var given givenContexts
				fn := func(ctx context.Context, v int) (int, error) {
					given.add(ctx)
					return v, nil
				}
				ended := false
				for _, err := range trimeter.AMap(parent, slices.Values([]int{0, 1, 2, 3}), fn, lc.opts...) {
					if err != nil {
						if !errors.Is(err, context.DeadlineExceeded) {
							t.Fatalf("yielded %v, want context.DeadlineExceeded", err)
						}
						break
					}
					if !ended {
						ended = true
						parent.end(context.DeadlineExceeded)
					}
				}
				checkGivenContexts(t, given.all(), context.DeadlineExceeded)
			}
		})
		t.Run("RunOnEach "+lc.name, func(t *testing.T) {
			for range runs {
				parent := newWatchedParent()
				var given givenContexts
				seq := func(yield func(int) bool) {
					if yield(0) {
						parent.end(context.DeadlineExceeded)
						yield(1)
					}
				}
				if err := trimeter.RunOnEach(parent, seq, given.each, lc.opts...); err != nil && !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("RunOnEach returned %v, want nil or context.DeadlineExceeded", err)
				}
				checkGivenContexts(t, given.all(), context.DeadlineExceeded)
			}
		})
	}
}

// givenContexts records the contexts given to fn, from any goroutine.
type givenContexts struct {
	mu   sync.Mutex
	ctxs []context.Context
}

func (g *givenContexts) add(ctx context.Context) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ctxs = append(g.ctxs, ctx)
}

// each is a no-op fn for RunOnEach that records its context.
func (g *givenContexts) each(ctx context.Context, _ int) error {
	g.add(ctx)
	return nil
}

func (g *givenContexts) all() []context.Context {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.ctxs)
}

// checkGivenContexts waits for every context in given to end, and fails t
// unless each ends with want as both its error and its cause.
func checkGivenContexts(t *testing.T, given []context.Context, want error) {
	t.Helper()
	for i, ctx := range given {
		select {
		case <-ctx.Done():
		case <-time.After(patience): // a watchdog: the end comes at once, or never
			t.Fatalf("context of call %d has not ended", i)
		}
		if ctx.Err() != want || context.Cause(ctx) != want {
			t.Fatalf("context of call %d: Err %v, Cause %v; want %v for both", i, ctx.Err(), context.Cause(ctx), want)
		}
	}
}

// brokenParent reports an end in Err, but never closes Done: it breaks the
// Context contract (say, a wrapper whose Err checks a deadline of its own
// while Done is another context's), and the context package never cancels
// the contexts made from it. A run cancels fn's context itself then, and
// leaves nothing behind (goleak: the goroutine the context package starts
// to watch a parent of a type it does not know would be left waiting).
type brokenParent struct {
	context.Context // Background: no deadline, no values
	done            chan struct{}
	ended           atomic.Bool
}

func (p *brokenParent) Done() <-chan struct{} { return p.done }

func (p *brokenParent) Err() error {
	if p.ended.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

func TestFnContextEndsUnderAParentWhoseDoneNeverCloses(t *testing.T) {
	for _, lc := range limitCases {
		for _, from := range []string{"the start", "a call"} {
			t.Run(lc.name+", an end from "+from, func(t *testing.T) {
				parent := &brokenParent{Context: context.Background(), done: make(chan struct{})}
				parent.ended.Store(from == "the start")
				var given givenContexts
				fn := func(ctx context.Context, v int) error {
					given.add(ctx)
					parent.ended.Store(true)
					return nil
				}
				_ = trimeter.RunOnEach(parent, slices.Values([]int{0, 1, 2}), fn, lc.opts...)
				for i, ctx := range given.all() {
					if ctx.Err() == nil {
						t.Errorf("context of call %d had not ended when the run returned", i)
					}
				}
				goleak.VerifyNone(t)
			})
		}
	}
}

// halfEndedParent reports an end in Err before it closes Done, which it
// does only when the test says (closeDone): a moment that some contexts
// have, between the two.
type halfEndedParent struct {
	brokenParent
}

func (p *halfEndedParent) closeDone() { close(p.done) }

// The parent counts as ended once its Done is closed. A run whose input
// ends while the parent's Err already reports an end but Done is still
// open ends as it would have without it: it returns nil and cancels fn's
// context with a cause of its own; the two agree.
func TestAParentEndsWhenItsDoneCloses(t *testing.T) {
	for _, lc := range limitCases {
		t.Run(lc.name, func(t *testing.T) {
			parent := &halfEndedParent{brokenParent{Context: context.Background(), done: make(chan struct{})}}
			defer parent.closeDone()
			var given givenContexts
			seq := func(yield func(int) bool) {
				if yield(0) {
					parent.ended.Store(true) // Err reports the end; Done stays open
				}
			}
			if err := trimeter.RunOnEach(parent, seq, given.each, lc.opts...); err != nil {
				t.Errorf("RunOnEach returned %v, want nil: Done was not closed", err)
			}
			calls := given.all()
			if len(calls) != 1 {
				t.Fatalf("fn was called %d times, want once", len(calls))
			}
			if ctx := calls[0]; ctx.Err() != context.Canceled || context.Cause(ctx) == context.DeadlineExceeded {
				t.Errorf("fn's context when the run returned: Err %v, Cause %v; want Canceled with the run's own cause", ctx.Err(), context.Cause(ctx))
			}
		})
	}
}

// holdingClock is a fake clock whose Now, once armed, blocks until the
// test releases it: the run reads it with mu held when a push-back starts
// a pause, so the test can hold the run's lock at a chosen moment.
type holdingClock struct {
	*testclock.Clock
	armed   atomic.Bool
	held    chan struct{}
	release chan struct{}
}

func (c *holdingClock) Now() time.Time {
	if c.armed.CompareAndSwap(true, false) {
		close(c.held)
		<-c.release
	}
	return c.Clock.Now()
}

// A failure that cancelled fn's context before the parent ended is the
// run's error, as it is the cause fn's context reports, even when the
// worker that has it records it only after the parent's end: the two
// agree.
func TestAFailureBeforeTheParentsEndIsTheRunsError(t *testing.T) {
	for _, api := range []string{"RunOnEach", "AMap"} {
		t.Run(api, func(t *testing.T) {
			clk := &holdingClock{Clock: testclock.New(), held: make(chan struct{}), release: make(chan struct{})}
			parent, cancel := context.WithCancel(context.Background())
			defer cancel()
			var started sync.WaitGroup
			started.Add(3)
			fail, pushBack := make(chan struct{}), make(chan struct{})
			cause := make(chan error, 1)
			fn := func(ctx context.Context, v int) (int, error) {
				started.Done()
				switch v {
				case 0:
					awaitCancel(t, ctx)
					cause <- context.Cause(ctx)
					return 0, ctx.Err()
				case 1:
					<-fail
					return 0, errBoom
				default:
					<-pushBack
					clk.armed.Store(true)
					return 0, trimeter.Pushback(time.Hour, errors.New("busy"))
				}
			}
			opts := []trimeter.Option{trimeter.MaxAtOnce(3), trimeter.WithClock(clk)}
			ret := make(chan error, 1)
			go func() {
				if api == "RunOnEach" {
					ret <- trimeter.RunOnEach(parent, slices.Values([]int{0, 1, 2}), func(ctx context.Context, v int) error {
						_, err := fn(ctx, v)
						return err
					}, opts...)
					return
				}
				var last error
				for _, err := range trimeter.AMap(parent, slices.Values([]int{0, 1, 2}), fn, opts...) {
					last = err
				}
				ret <- last
			}()
			started.Wait()
			close(pushBack)
			<-clk.held // input 2's worker holds the run's lock, starting the pause
			close(fail)
			if c := <-cause; c != errBoom {
				t.Fatalf("fn's context ended with cause %v, want the failure", c)
			}
			cancel() // the parent ends before input 1's worker records the failure
			close(clk.release)
			if err := <-ret; err != errBoom {
				t.Errorf("the run's error is %v, want the failure that fn's context reports as its cause", err)
			}
		})
	}
}

// What the run decides while the parent's Err reports an end and its Done
// is still open, it decides as if the parent had not ended: the parent
// counts as ended only once Done is closed.
func TestAHalfEndedParentHasNotEnded(t *testing.T) {
	newParent := func() *halfEndedParent {
		return &halfEndedParent{brokenParent{Context: context.Background(), done: make(chan struct{})}}
	}
	t.Run("a failure is the run's error", func(t *testing.T) {
		parent := newParent()
		defer parent.closeDone()
		started := make(chan struct{})
		err := trimeter.RunOnEach(parent, slices.Values([]int{0, 1}), func(ctx context.Context, v int) error {
			if v == 0 {
				close(started)
				awaitCancel(t, ctx)
				return ctx.Err()
			}
			<-started
			parent.ended.Store(true)
			return errBoom
		}, trimeter.MaxAtOnce(2))
		if err != errBoom {
			t.Errorf("RunOnEach returned %v, want the failure", err)
		}
	})
	t.Run("KeepGoing goes on", func(t *testing.T) {
		parent := newParent()
		defer parent.closeDone()
		calls := 0
		err := trimeter.RunOnEach(parent, slices.Values([]int{0, 1}), func(ctx context.Context, v int) error {
			calls++
			if v == 0 {
				parent.ended.Store(true)
				return errBoom
			}
			return nil
		}, trimeter.MaxAtOnce(1), trimeter.KeepGoing())
		if !errors.Is(err, errBoom) || calls != 2 {
			t.Errorf("RunOnEach returned %v after %d calls, want the failure after 2", err, calls)
		}
	})
	t.Run("RunAny's answer is the run's", func(t *testing.T) {
		parent := newParent()
		defer parent.closeDone()
		v, err := trimeter.RunAny(parent, slices.Values([]func(context.Context) (int, error){
			func(context.Context) (int, error) { parent.ended.Store(true); return 7, nil },
		}))
		if v != 7 || err != nil {
			t.Errorf("RunAny returned %v, %v; want 7, nil", v, err)
		}
	})
	t.Run("the results finished before a failure are handed out", func(t *testing.T) {
		parent := newParent()
		defer parent.closeDone()
		recorded := make(chan struct{})
		// One at a time, the run's goroutine runs each input's task in
		// yield: once yield(2) returns, input 2's failure is recorded,
		// and input 1's result waits in the buffer.
		seq := func(yield func(int) bool) {
			if yield(0) && yield(1) && !yield(2) {
				close(recorded)
			}
		}
		fn := func(_ context.Context, v int) (int, error) {
			if v == 2 {
				parent.ended.Store(true)
				return 0, errBoom
			}
			return v, nil
		}
		var got []string
		for v, err := range trimeter.AMap(parent, seq, fn, trimeter.MaxAtOnce(1), trimeter.BufferSize(4)) {
			if err != nil {
				got = append(got, err.Error())
				continue
			}
			got = append(got, fmt.Sprint(v))
			if v == 0 {
				select {
				case <-recorded:
				case <-time.After(patience): // a watchdog: input 2 fails at once
					t.Fatal("input 2's failure was not recorded")
				}
			}
		}
		if want := []string{"0", "1", errBoom.Error()}; !slices.Equal(got, want) {
			t.Errorf("AMap yielded %q, want %q", got, want)
		}
	})
}

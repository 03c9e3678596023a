package trimeter_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/throttle"
	"go.uber.org/goleak"
)

// attemptErr is the error of one attempt at one input.
type attemptErr struct{ in, attempt int }

func (e *attemptErr) Error() string { return fmt.Sprintf("input %d, attempt %d", e.in, e.attempt) }

// noBackoff makes retries follow at once: the computed wait is zero.
var noBackoff = trimeter.Backoff(time.Nanosecond, time.Nanosecond)

// attempts counts the attempts at each input.
type attempts struct {
	mu sync.Mutex
	n  map[int]int
}

// next notes one more attempt at in and returns its number, from 1.
func (a *attempts) next(in int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == nil {
		a.n = make(map[int]int)
	}
	a.n[in]++
	return a.n[in]
}

func (a *attempts) of(in int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n[in]
}

func TestRetryMakesAtMostNAttempts(t *testing.T) {
	for n := 1; n <= 4; n++ {
		t.Run(fmt.Sprintf("Retry(%d) on an input that always fails", n), func(t *testing.T) {
			var a attempts
			err := trimeter.RunOnEach(context.Background(), newProbe(1).seq(), func(_ context.Context, v int) error {
				return &attemptErr{v, a.next(v)}
			}, trimeter.Retry(n), noBackoff)
			if got := a.of(0); got != n {
				t.Errorf("%d attempts, want %d", got, n)
			}
			checkAttemptErrors(t, err, 0, n)
		})
	}
	t.Run("Retry(4) keeping going over inputs that succeed at attempts 1 to 5", func(t *testing.T) {
		// Input i succeeds at attempt i%5+1: inputs with i%5 == 4 never do.
		const n = 20
		var a attempts
		fn := func(_ context.Context, v int) (int, error) {
			if k := a.next(v); k <= v%5 {
				return 0, &attemptErr{v, k}
			}
			return v, nil
		}
		failed := make(map[int]error)
		for in, out := range trimeter.Outcomes(context.Background(), newProbe(n).seq(), fn, trimeter.Retry(4), noBackoff, trimeter.MaxAtOnce(3)) {
			if out.Err != nil {
				failed[in.Index] = out.Err
			} else if out.Value != in.Value {
				t.Errorf("input %d: got %d", in.Value, out.Value)
			}
		}
		for i := range n {
			if got, want := a.of(i), min(i%5+1, 4); got != want {
				t.Errorf("input %d: %d attempts, want %d", i, got, want)
			}
			if err, ok := failed[i]; ok != (i%5 == 4) {
				t.Errorf("input %d: error %v", i, err)
			} else if ok {
				checkAttemptErrors(t, err, i, 4)
			}
		}
	})
}

// checkAttemptErrors asserts that err is how input in fails after n
// attempts: a RetryError holding each attempt's error in order (or the
// error itself after one attempt), all found by errors.Is.
func checkAttemptErrors(t *testing.T, err error, in, n int) {
	t.Helper()
	var re *trimeter.RetryError
	if n == 1 {
		if errors.As(err, &re) {
			t.Errorf("got %v, want the only attempt's error, not a RetryError", err)
		}
	} else if !errors.As(err, &re) || len(re.Errs) != n {
		t.Fatalf("got %v, want a RetryError of %d attempts", err, n)
	}
	for k := 1; k <= n; k++ {
		var ae *attemptErr
		if n > 1 && (!errors.As(re.Errs[k-1], &ae) || *ae != (attemptErr{in, k})) {
			t.Errorf("attempt %d's error is %v", k, re.Errs[k-1])
		}
		target := &attemptErr{in, k}
		found := false
		for _, e := range flatten(err) {
			if ae, ok := e.(*attemptErr); ok && *ae == *target {
				found = true
			}
		}
		if !found {
			t.Errorf("the error does not hold attempt %d's error", k)
		}
	}
	if n > 1 && !strings.Contains(err.Error(), fmt.Sprintf("after %d attempts", n)) {
		t.Errorf("message %q does not say how many attempts were made", err)
	}
}

// flatten returns every error in err's tree, as errors.Is walks it.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	out := []error{err}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		out = append(out, flatten(u.Unwrap())...)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, flatten(e)...)
		}
	}
	return out
}

func TestRetryErrorsIsFindsEveryAttempt(t *testing.T) {
	errs := []error{errors.New("first"), errors.New("second"), errors.New("third")}
	var k atomic.Int64
	err := trimeter.RunOnEach(context.Background(), newProbe(1).seq(), func(context.Context, int) error {
		return fmt.Errorf("wrapped: %w", errs[k.Add(1)-1])
	}, trimeter.Retry(3), noBackoff)
	for _, e := range errs {
		if !errors.Is(err, e) {
			t.Errorf("errors.Is(%v, %v) is false", err, e)
		}
	}
}

func TestRetryDoesNotRetryContextOrPermanentErrors(t *testing.T) {
	errBad := errors.New("bad request")
	cases := []struct {
		name     string
		failAt   int // the attempt that returns final
		final    error
		attempts int
	}{
		{"a deadline of the call's own", 1, fmt.Errorf("GET: %w", context.DeadlineExceeded), 1},
		{"a cancel of the call's own", 1, context.Canceled, 1},
		{"a permanent error at the first attempt", 1, trimeter.Permanent(errBad), 1},
		{"a permanent error at the second attempt", 2, trimeter.Permanent(errBad), 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var a attempts
			err := trimeter.RunOnEach(context.Background(), newProbe(1).seq(), func(_ context.Context, v int) error {
				if k := a.next(v); k < c.failAt {
					return &attemptErr{v, k}
				}
				return c.final
			}, trimeter.Retry(5), noBackoff)
			if got := a.of(0); got != c.attempts {
				t.Errorf("%d attempts, want %d", got, c.attempts)
			}
			if !errors.Is(err, c.final) && !errors.Is(err, errBad) {
				t.Errorf("got %v, want %v", err, c.final)
			}
			var re *trimeter.RetryError
			if isRetry := errors.As(err, &re); isRetry != (c.attempts > 1) {
				t.Errorf("got %v: a RetryError only after more than one attempt", err)
			}
		})
	}
	if trimeter.Permanent(nil) != nil {
		t.Errorf("Permanent(nil) is not nil")
	}
	if err := trimeter.Permanent(errBad); !errors.Is(err, errBad) || err.Error() != errBad.Error() {
		t.Errorf("Permanent(err) = %v, want err seen through", err)
	}
}

func TestRetryDoesNotRetryAPanic(t *testing.T) {
	var a attempts
	v := catch(func() {
		_ = trimeter.RunOnEach(context.Background(), newProbe(1).seq(), func(_ context.Context, v int) error {
			a.next(v)
			detonate(v)
			return nil
		}, trimeter.Retry(3), noBackoff)
	})
	checkPanicError(t, v, boomValue{0}, "detonate")
	if got := a.of(0); got != 1 {
		t.Errorf("%d attempts, want 1", got)
	}
}

func TestRetryBadOptions(t *testing.T) {
	cases := []struct {
		opt  trimeter.Option
		want string
	}{
		{trimeter.Retry(0), "Retry(0)"},
		{trimeter.Retry(-3), "Retry(-3)"},
		{trimeter.Backoff(0, time.Second), "Backoff(0s, 1s)"},
		{trimeter.Backoff(time.Second, 0), "Backoff(1s, 0s)"},
		{trimeter.Backoff(2*time.Second, time.Second), "Backoff(2s, 1s)"},
		{trimeter.Backoff(-time.Second, time.Second), "Backoff(-1s, 1s)"},
	}
	for _, ep := range append(slices.Clone(entryPoints), pipelineEntryPoints...) {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s reports %s and runs nothing", ep.name, c.want), func(t *testing.T) {
				p := newProbe(3)
				var calls atomic.Int64
				fn := func(context.Context, int) (int, error) { calls.Add(1); return 0, nil }
				checkBadOption(t, ep.call(t, p.seq(), fn, trimeter.Retry(2), c.opt), c.want)
				if calls.Load() != 0 || p.pulled.Load() != 0 {
					t.Errorf("fn called %d times, %d inputs pulled; want none", calls.Load(), p.pulled.Load())
				}
			})
		}
	}
}

func TestRetryBackoffTiming(t *testing.T) {
	const base, cap = 100 * time.Millisecond, time.Second
	for seed := range 3 {
		t.Run(fmt.Sprintf("run %d", seed), func(t *testing.T) {
			clk := newFakeClock()
			l := newTimeline(clk)
			// One input at a time: the only timer is the backoff's.
			stop := drive(clk, time.Millisecond)
			err := trimeter.RunOnEach(context.Background(), newProbe(1).seq(), func(context.Context, int) error {
				l.note("attempt")
				return errBoom
			}, trimeter.MaxAtOnce(1), trimeter.Retry(6), trimeter.Backoff(base, cap), trimeter.WithClock(clk))
			stop()
			if !errors.Is(err, errBoom) {
				t.Errorf("got %v, want errBoom after 6 attempts", err)
			}
			at := l.of("attempt")
			if len(at) != 6 {
				t.Fatalf("%d attempts, want 6", len(at))
			}
			for k := 1; k < len(at); k++ {
				// The wait before attempt k+1 is within half and all of
				// base·2^(k-1), capped.
				hi := min(base<<(k-1), cap)
				if gap := at[k] - at[k-1]; gap < hi/2 || gap > hi {
					t.Errorf("wait before attempt %d: %v, want %v to %v", k+1, gap, hi/2, hi)
				}
			}
		})
	}
	t.Run("by default from 100ms", func(t *testing.T) {
		clk := newFakeClock()
		l := newTimeline(clk)
		stop := drive(clk, time.Millisecond)
		_ = trimeter.RunOnEach(context.Background(), newProbe(1).seq(), func(context.Context, int) error {
			l.note("attempt")
			return errBoom
		}, trimeter.MaxAtOnce(1), trimeter.Retry(2), trimeter.WithClock(clk))
		stop()
		if at := l.of("attempt"); len(at) != 2 || at[1] < 50*time.Millisecond || at[1] > 100*time.Millisecond {
			t.Errorf("attempts at %v, want the second 50ms to 100ms after the first", at)
		}
	})
}

func TestRetryWaitsForThePushbackInsteadOfTheBackoff(t *testing.T) {
	for _, perKey := range []bool{false, true} {
		t.Run(fmt.Sprintf("under PerKey %v", perKey), func(t *testing.T) {
			clk := newFakeClock()
			l := newTimeline(clk)
			pauses := []time.Duration{300 * time.Millisecond, 5 * time.Second}
			var k atomic.Int64
			fn := func(context.Context, int) error {
				l.note("attempt")
				if n := k.Add(1); int(n) <= len(pauses) {
					return trimeter.Pushback(pauses[n-1], errBusy)
				}
				return nil
			}
			// One at a time, so that the only timer is the one the retry
			// waits on.
			opts := []trimeter.Option{trimeter.MaxAtOnce(1), trimeter.Retry(3), trimeter.Backoff(time.Second, time.Second), trimeter.WithClock(clk)}
			if perKey {
				opts = append(opts, trimeter.PerKey(func(int) int { return 0 }))
			}
			stop := drive(clk, 100*time.Millisecond)
			err := trimeter.RunOnEach(context.Background(), newProbe(1).seq(), fn, opts...)
			stop()
			if err != nil {
				t.Errorf("unexpected error %v", err)
			}
			if got, want := l.of("attempt"), []time.Duration{0, 300 * time.Millisecond, 5300 * time.Millisecond}; !slices.Equal(got, want) {
				t.Errorf("attempts at %v, want %v", got, want)
			}
		})
	}
}

func TestRetryHoldsTheSlotThroughTheBackoff(t *testing.T) {
	// MaxAtOnce(2): input 0 fails once and waits 1s; input 1 runs until
	// released. Neither slot is free, so input 2 must not start.
	clk := newFakeClock()
	release := make(chan struct{})
	var a attempts
	var running1 counter
	fn := func(_ context.Context, v int) error {
		k := a.next(v)
		switch {
		case v == 0 && k == 1:
			return errBoom
		case v == 1:
			running1.add(1)
			<-release
		}
		return nil
	}
	done := make(chan error, 1)
	go func() {
		done <- trimeter.RunOnEach(context.Background(), newProbe(3).seq(), fn,
			trimeter.MaxAtOnce(2), trimeter.Retry(2), trimeter.Backoff(2*time.Second, 2*time.Second), trimeter.WithClock(clk))
	}()
	running1.await(t, 1, "input 1")
	if err := clk.BlockUntilContext(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	settle(func() int64 { return int64(a.of(2)) })
	if got := a.of(2); got != 0 {
		t.Errorf("input 2 started while input 0 waited to retry and input 1 ran")
	}
	close(release)
	stop := drive(clk, 100*time.Millisecond)
	err := <-done
	stop()
	if err != nil {
		t.Errorf("unexpected error %v", err)
	}
	if a.of(0) != 2 || a.of(1) != 1 || a.of(2) != 1 {
		t.Errorf("attempts %d, %d, %d; want 2, 1, 1", a.of(0), a.of(1), a.of(2))
	}
}

func TestRetryUnderOrderedDoesNotDeadlock(t *testing.T) {
	const seeds, n = 40, 30
	for seed := range uint64(seeds) {
		r := rand.New(rand.NewPCG(seed, 11))
		fails := make([]int, n)
		for i := range fails {
			fails[i] = r.IntN(3) // failed attempts before success
		}
		var a attempts
		fn := func(_ context.Context, v int) (int, error) {
			if a.next(v) <= fails[v] {
				return 0, errBoom
			}
			return v, nil
		}
		opts := []trimeter.Option{trimeter.Ordered(), trimeter.Retry(3), trimeter.Backoff(time.Microsecond, 4*time.Microsecond),
			trimeter.MaxAtOnce(1 + r.IntN(3)), trimeter.BufferSize(r.IntN(2))}
		got := runWithin(t, fmt.Sprintf("seed %d", seed), func(ctx context.Context) iter.Seq2[int, error] {
			return trimeter.AMap(ctx, newProbe(n).seq(), fn, opts...)
		})
		if t.Failed() {
			t.Fatalf("seed %d failed", seed)
		}
		for i, v := range got {
			if v != i {
				t.Fatalf("seed %d: got %v, want 0..%d in order", seed, got, n-1)
			}
		}
		if len(got) != n {
			t.Errorf("seed %d: %d results, want %d", seed, len(got), n)
		}
	}
}

func TestRetryAttemptsWaitForTheCallsRate(t *testing.T) {
	// Every input fails twice and then succeeds. Counting retries, the
	// attempts come exactly as the bucket allows: with no limit on
	// concurrency there is always one waiting for the next token.
	const inputs, tries, interval, burst = 6, 3, 250 * time.Millisecond, 2
	clk := newFakeClock()
	l := newTimeline(clk)
	want := map[string]func(time.Duration) int{"attempt": func(e time.Duration) int { return due(inputs*tries, burst, interval, e) }}
	stop := stepWhen(t, clk, interval/5, settledAt(l, want))
	var a attempts
	err := trimeter.RunOnEach(context.Background(), newProbe(inputs).seq(), func(_ context.Context, v int) error {
		l.note("attempt")
		if a.next(v) < tries {
			return errBoom
		}
		return nil
	}, trimeter.MaxPerSecond(4), trimeter.MaxBurst(burst), trimeter.Retry(tries), noBackoff, trimeter.WithClock(clk))
	stop()
	if err != nil {
		t.Fatalf("unexpected error %v", err)
	}
	got := l.of("attempt")
	var exact []time.Duration
	for k := range inputs * tries {
		exact = append(exact, time.Duration(max(0, k-burst+1))*interval)
	}
	if !slices.Equal(got, exact) {
		t.Errorf("attempts at %v, want %v", got, exact)
	}
}

func TestRetryAttemptsWaitForEachKeysRate(t *testing.T) {
	// Keys a and b may each start twice a second; every input fails once
	// and is retried at once. One task at a time, holding its slot while
	// its retry waits: each key's attempts, retries included, come exactly
	// 500ms apart, and the keys take turns.
	const interval = 500 * time.Millisecond
	clk := newFakeClock()
	l := newTimeline(clk)
	stop := drive(clk, interval/5)
	var a attempts
	err := trimeter.RunOnEach(context.Background(), slices.Values(jobsOf("a", "b", "a", "b", "a", "b")), func(_ context.Context, j job) error {
		l.note(j.key)
		if a.next(j.id) == 1 {
			return errBoom
		}
		return nil
	}, trimeter.MaxAtOnce(1), trimeter.PerKey(jobKey, trimeter.MaxPerSecond(2)), trimeter.Retry(2), noBackoff, trimeter.WithClock(clk))
	stop()
	if err != nil {
		t.Fatalf("unexpected error %v", err)
	}
	for k, first := range map[string]time.Duration{"a": 0, "b": interval} {
		var exact []time.Duration
		for i := range 6 {
			exact = append(exact, first+time.Duration(i)*interval)
		}
		if got := l.of(k); !slices.Equal(got, exact) {
			t.Errorf("key %s: attempts at %v, want %v", k, got, exact)
		}
	}
}

func TestRetryAttemptsHoldEveryRateAtOnce(t *testing.T) {
	// Overall 4 per second, each key 2 per second, one at a time: every
	// attempt, retries included, counts against both. Input i makes
	// 1 + i%3 attempts, each retry at once on the slot it holds. So the
	// attempts come where both buckets let them, and an input whose key is
	// not ready waits aside while the next one starts:
	//
	//	0 s     input 0 (a)
	//	0.25 s  input 1 (a) waits for a's bucket; input 2 (b) at 0.25, 0.75, 1.25
	//	1.5 s   input 1 (a) at 1.5, 2
	//	2.25 s  input 3 (a) waits for a's bucket; input 4 (c) at 2.25, 2.75
	//	3 s     input 3 (a)
	//	3.25 s  input 5 (b) at 3.25, 3.75, 4.25
	//	4.5 s   input 6 (a)
	//	4.75 s  input 7 (c) at 4.75, 5.25
	//	5.5 s   input 8 (c) waits for c's bucket; input 9 (a)
	//	5.75 s  input 8 (c) at 5.75, 6.25, 6.75
	//
	// The clock moves only once every attempt due has been noted: moved
	// while a task is admitted, it would put the note of its call a step
	// after the instant its tokens were taken, and the windows between
	// calls would no longer be the windows between grants.
	ms := func(ds ...int) []time.Duration {
		out := make([]time.Duration, len(ds))
		for i, d := range ds {
			out[i] = time.Duration(d) * time.Millisecond
		}
		return out
	}
	exact := map[string][]time.Duration{
		"a": ms(0, 1500, 2000, 3000, 4500, 5500),
		"b": ms(250, 750, 1250, 3250, 3750, 4250),
		"c": ms(2250, 2750, 4750, 5250, 5750, 6250, 6750),
	}
	want := make(map[string]func(time.Duration) int)
	for k, at := range exact {
		want[k] = func(elapsed time.Duration) int {
			n, _ := slices.BinarySearch(at, elapsed+1)
			return n
		}
	}
	clk := newFakeClock()
	l := newTimeline(clk)
	stop := stepWhen(t, clk, 50*time.Millisecond, settledAt(l, want))
	keys := []string{"a", "a", "b", "a", "c", "b", "a", "c", "c", "a"}
	var a attempts
	err := trimeter.RunOnEach(context.Background(), slices.Values(jobsOf(keys...)), func(_ context.Context, j job) error {
		l.note(j.key)
		if a.next(j.id) < 1+j.id%3 {
			return errBoom
		}
		return nil
	}, trimeter.MaxAtOnce(1), trimeter.MaxPerSecond(4), trimeter.PerKey(jobKey, trimeter.MaxPerSecond(2)),
		trimeter.Retry(3), noBackoff, trimeter.WithClock(clk))
	stop()
	if err != nil {
		t.Fatalf("unexpected error %v", err)
	}
	var all []time.Duration
	for k, at := range exact {
		got := l.of(k)
		if !slices.Equal(got, at) {
			t.Errorf("key %s: attempts at %v, want %v", k, got, at)
		}
		checkWindows(t, "key "+k, got, 2, 1)
		all = append(all, got...)
	}
	slices.Sort(all)
	checkWindows(t, "overall", all, 4, 1)
}

// checkWindows asserts that the sorted starts hold a token bucket: every
// window [s_i, s_j] holds at most burst + rate·(s_j - s_i) of them.
func checkWindows(t *testing.T, what string, starts []time.Duration, rate float64, burst int) {
	t.Helper()
	for i := range starts {
		for j := i + 1; j < len(starts); j++ {
			w := (starts[j] - starts[i]).Seconds()
			if float64(j-i+1) > float64(burst)+rate*w+1e-9 {
				t.Errorf("%s: %d starts from %v to %v, want at most %v", what, j-i+1, starts[i], starts[j], float64(burst)+rate*w)
			}
		}
	}
}

// The error types' messages, built by the library or by hand with fields
// left zero: none panics.
func TestErrorMessages(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{&trimeter.RetryError{Errs: []error{errors.New("a"), errors.New("b")}}, "b (after 2 attempts)"},
		{&trimeter.RetryError{}, "trimeter: no attempts"},
		{&trimeter.RetryError{Errs: []error{nil}}, "<nil> (after 1 attempts)"},
		{&trimeter.ItemError{Index: 3, Err: errors.New("x")}, "input 3: x"},
		{&trimeter.ItemError{Index: 3}, "input 3: <nil>"},
		{&trimeter.PushbackError{After: time.Second}, "pushed back for 1s"},
		{&trimeter.PanicError{Value: "v"}, "panic: v\n\n"},
	}
	for _, c := range cases {
		var got string
		if v := catch(func() { got = c.err.Error() }); v != nil {
			t.Errorf("%#v: Error panicked with %v", c.err, v)
			continue
		}
		if got != c.want {
			t.Errorf("%#v: Error() = %q, want %q", c.err, got, c.want)
		}
	}
}

// secondFails is a meter that gives its first permit and fails every
// later Acquire, as a shared store that went down between two attempts.
type secondFails struct{ n atomic.Int64 }

type nopPermit struct{}

func (nopPermit) Done(throttle.Outcome) {}

var errMeterDown = errors.New("meter down")

func (m *secondFails) Acquire(context.Context) (throttle.Permit, error) {
	if m.n.Add(1) > 1 {
		return nil, errMeterDown
	}
	return nopPermit{}, nil
}

// A meter that fails before a retry ends the task with its own error, as
// it would before a first attempt: no RetryError counts it as an attempt.
func TestRetryEndsWithTheErrorOfAMeterThatFailsBeforeARetry(t *testing.T) {
	var calls atomic.Int64
	err := trimeter.RunOnEach(context.Background(), newProbe(1).seq(), func(context.Context, int) error {
		calls.Add(1)
		return errBoom
	}, trimeter.WithMeter(&secondFails{}), trimeter.Retry(3), noBackoff)
	if err != errMeterDown {
		t.Errorf("RunOnEach = %v, want the meter's error alone", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("fn called %d times, want 1", n)
	}
}

// A retry whose meter grants its permit after the run stopped does not
// start.
func TestNoRetryStartsOnAPermitGrantedAfterTheStop(t *testing.T) {
	m := newGatedTrier(4) // the first attempts of inputs 0 to 2, then 0's retry
	var attempts0 atomic.Int64
	started2 := make(chan struct{})
	fn := func(ctx context.Context, v int) error {
		switch v {
		case 0:
			attempts0.Add(1)
			<-started2
			return errors.New("try again")
		case 1:
			<-m.entered // input 0's retry waits for its permit
			return trimeter.Permanent(errBoom)
		}
		close(started2)
		awaitCancel(t, ctx) // the failure cancels it
		close(m.gate)
		return ctx.Err()
	}
	err := trimeter.RunOnEach(context.Background(), newProbe(3).seq(), fn,
		trimeter.MaxAtOnce(3), trimeter.Retry(2), trimeter.Backoff(time.Nanosecond, time.Nanosecond), trimeter.WithMeter(m))
	if !errors.Is(err, errBoom) {
		t.Errorf("RunOnEach = %v, want errBoom", err)
	}
	if n := attempts0.Load(); n != 1 {
		t.Errorf("input 0 made %d attempts, want 1: its retry's permit came after the failure", n)
	}
	goleak.VerifyNone(t)
}

package trimeter_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/internal/testclock"
	"github.com/trimeter-go/trimeter/throttle"
)

// job is an input with a key.
type job struct {
	id  int
	key string
}

func jobKey(j job) string { return j.key }

// jobsOf returns jobs 0, 1, ... with the given keys, in order.
func jobsOf(keys ...string) []job {
	js := make([]job, len(keys))
	for i, k := range keys {
		js[i] = job{i, k}
	}
	return js
}

// timeline notes, on a fake clock, when each key's calls started.
type timeline struct {
	clk clockwork.Clock
	mu  sync.Mutex
	at  map[string][]time.Duration // since epoch, in the order noted
}

func newTimeline(clk clockwork.Clock) *timeline {
	return &timeline{clk: clk, at: make(map[string][]time.Duration)}
}

func (l *timeline) note(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at[key] = append(l.at[key], l.clk.Since(epoch))
}

func (l *timeline) of(key string) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(slices.Values(l.at[key]))
}

func (l *timeline) count(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.at[key])
}

// due says how many of n starts a token bucket of burst and interval lets
// through by elapsed, for a scheduler that wastes no token.
func due(n, burst int, interval, elapsed time.Duration) int {
	return min(n, burst+int(elapsed/interval))
}

// settledAt returns a check for stepWhen: the starts noted on l for each
// key must be exactly as many as want says are due, never more.
func settledAt(l *timeline, want map[string]func(elapsed time.Duration) int) func(time.Duration) (bool, error) {
	return func(elapsed time.Duration) (bool, error) {
		ok := true
		for key, w := range want {
			got, n := l.count(key), w(elapsed)
			if got > n {
				return false, fmt.Errorf("key %q: %d starts by %v, want at most %d", key, got, elapsed, n)
			}
			ok = ok && got == n
		}
		return ok, nil
	}
}

// stepWhen moves clk forward by step each time a timer waits on it, every
// other goroutine is blocked (testclock.Idle), and settled says that
// everything due by the clock's time has happened, so that whatever a
// test notes at an instant is noted before the clock moves on. settled
// reports an error when more has happened than may. If settled fails, or
// does not hold within patience, stepWhen reports it and goes on without
// it, so that the run can end. The returned stop ends the driving and
// waits for it.
func stepWhen(t *testing.T, clk *clockwork.FakeClock, step time.Duration, settled func(elapsed time.Duration) (bool, error)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		gated := true
		for {
			if gated && !awaitSettled(ctx, t, clk, settled) {
				gated = false
			}
			if !awaitIdleWaiter(ctx, clk) {
				return
			}
			clk.Advance(step)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// awaitSettled waits until settled holds at the clock's time. It returns
// false, having reported a failure, if settled fails or patience runs out.
func awaitSettled(ctx context.Context, t *testing.T, clk *clockwork.FakeClock, settled func(time.Duration) (bool, error)) bool {
	deadline := time.Now().Add(patience)
	for {
		elapsed := clk.Since(epoch)
		ok, err := settled(elapsed)
		switch {
		case err != nil:
			t.Errorf("at %v: %v", elapsed, err)
			return false
		case ok || ctx.Err() != nil:
			return true
		case time.Now().After(deadline):
			t.Errorf("at %v: what was due did not happen", elapsed)
			return false
		}
		time.Sleep(20 * time.Microsecond)
	}
}

func TestPerKeyMaxAtOnceIsReachedAndNeverExceeded(t *testing.T) {
	const perKey, keys, n = 2, 3, 30
	for _, overall := range []int{0, perKey * keys, perKey*keys + 2} {
		for _, ep := range []string{"RunOnEach", "AMap"} {
			t.Run(fmt.Sprintf("%s with MaxAtOnce %d overall", ep, overall), func(t *testing.T) {
				var gauges [keys]gauge
				all := newBarrier(perKey * keys)
				fn := func(_ context.Context, j job) (int, error) {
					g := &gauges[j.id%keys]
					g.enter()
					defer g.leave()
					all.wait(t) // the first calls of every key run together
					return j.id, nil
				}
				js := make([]job, n)
				for i := range js {
					js[i] = job{i, fmt.Sprint("key", i%keys)}
				}
				opts := []trimeter.Option{trimeter.PerKey(jobKey, trimeter.MaxAtOnce(perKey))}
				if overall > 0 {
					opts = append(opts, trimeter.MaxAtOnce(overall))
				}
				runJobs(t, ep, slices.Values(js), fn, n, opts...)
				for k := range gauges {
					if p := gauges[k].peak.Load(); p != perKey {
						t.Errorf("key %d: at most %d calls at once, want exactly %d", k, p, perKey)
					}
				}
			})
		}
	}
}

// runJobs runs fn over jobs through RunOnEach or AMap, and asserts that
// every job ran once without an error.
func runJobs(t *testing.T, ep string, jobs iter.Seq[job], fn func(context.Context, job) (int, error), n int, opts ...trimeter.Option) {
	t.Helper()
	var done []int
	switch ep {
	case "RunOnEach":
		var mu sync.Mutex
		err := trimeter.RunOnEach(context.Background(), jobs, func(ctx context.Context, j job) error {
			v, err := fn(ctx, j)
			mu.Lock()
			done = append(done, v)
			mu.Unlock()
			return err
		}, opts...)
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
	case "AMap":
		for v, err := range trimeter.AMap(context.Background(), jobs, fn, opts...) {
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			done = append(done, v)
		}
	}
	slices.Sort(done)
	for i, v := range done {
		if i >= n || v != i {
			t.Fatalf("jobs done: %v, want each of 0..%d once", done, n-1)
		}
	}
	if len(done) != n {
		t.Errorf("%d jobs done, want %d", len(done), n)
	}
}

func TestPerKeySlotIsHeldUntilTheResultIsDelivered(t *testing.T) {
	// Under Ordered, b's result comes first; while the loop holds it, a's
	// first result waits undelivered and keeps key a's only slot, so a's
	// second job must not start.
	var calls [3]counter
	fn := func(_ context.Context, j job) (int, error) {
		calls[j.id].add(1)
		return j.id, nil
	}
	js := jobsOf("b", "a", "a")
	first := true
	for v, err := range trimeter.AMap(context.Background(), slices.Values(js), fn,
		trimeter.PerKey(jobKey, trimeter.MaxAtOnce(1)), trimeter.Ordered()) {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		if !first {
			continue
		}
		first = false
		if v != 0 {
			t.Fatalf("first result is %d, want 0 under Ordered", v)
		}
		calls[1].await(t, 1, "a's first job")
		settle(func() int64 { return int64(calls[2].load()) })
		if c := calls[2].load(); c != 0 {
			t.Errorf("a's second job started while a's first result was undelivered")
		}
	}
}

func TestPerKeyRateOnTheFakeClock(t *testing.T) {
	const interval = 250 * time.Millisecond // MaxPerSecond(4)
	keys := []string{"a", "b", "a", "b", "a", "a", "b", "a"}
	count := map[string]int{"a": 5, "b": 3}
	for _, burst := range []int{1, 2} {
		for _, ep := range []string{"RunOnEach", "AMap"} {
			t.Run(fmt.Sprintf("%s in bursts of %d", ep, burst), func(t *testing.T) {
				clk := newFakeClock()
				l := newTimeline(clk)
				want := make(map[string]func(time.Duration) int)
				for k, n := range count {
					want[k] = func(e time.Duration) int { return due(n, burst, interval, e) }
				}
				stop := stepWhen(t, clk, interval/5, settledAt(l, want))
				fn := func(_ context.Context, j job) (int, error) {
					l.note(j.key)
					return j.id, nil
				}
				runJobs(t, ep, slices.Values(jobsOf(keys...)), fn, len(keys), trimeter.WithClock(clk),
					trimeter.PerKey(jobKey, trimeter.MaxPerSecond(4), trimeter.MaxBurst(burst)))
				stop()
				for k, n := range count {
					var exact []time.Duration
					for i := range n {
						exact = append(exact, time.Duration(max(0, i-burst+1))*interval)
					}
					if got := l.of(k); !slices.Equal(got, exact) {
						t.Errorf("key %s started at %v, want %v", k, got, exact)
					}
				}
			})
		}
	}
}

func TestPerKeyBlockedKeyDoesNotHoldUpOthers(t *testing.T) {
	const slow, fast = 5, 40
	for _, ordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("ordered %v", ordered), func(t *testing.T) {
			release := make(chan struct{})
			var fastDone counter
			var keys []string
			for range slow {
				keys = append(keys, "slow")
			}
			for i := range fast {
				keys = append(keys, fmt.Sprint("fast", i))
			}
			var slowCalls atomic.Int64
			fn := func(_ context.Context, j job) (int, error) {
				if j.key == "slow" {
					if slowCalls.Add(1) == 1 {
						<-release
					}
				} else {
					fastDone.add(1)
				}
				return j.id, nil
			}
			go func() {
				// Without head-of-line blocking, every fast job runs
				// while the slow key's first job is stuck.
				fastDone.await(t, fast, "fast jobs done while the slow key is blocked")
				close(release)
			}()
			opts := []trimeter.Option{trimeter.MaxAtOnce(3), trimeter.PerKey(jobKey, trimeter.MaxAtOnce(1))}
			if ordered {
				// Delivery waits for the slow job, so the window must hold
				// every fast result meanwhile.
				opts = append(opts, trimeter.BufferSize(fast+slow))
			}
			runJobs(t, "AMap", slices.Values(jobsOf(keys...)), fn, len(keys), opts...)
		})
	}
}

func TestPerKeyRateLimitedKeyDoesNotHoldUpOthers(t *testing.T) {
	// The slow key's jobs come first; every key may start once a second.
	// The other keys' jobs all start at once, while the slow key's wait
	// their turn, one a second.
	const slow, fast = 5, 30
	var keys []string
	for range slow {
		keys = append(keys, "slow")
	}
	for i := range fast {
		keys = append(keys, fmt.Sprint("fast", i))
	}
	clk := newFakeClock()
	l := newTimeline(clk)
	want := map[string]func(time.Duration) int{
		"slow": func(e time.Duration) int { return due(slow, 1, time.Second, e) },
		"fast": func(time.Duration) int { return fast },
	}
	stop := stepWhen(t, clk, 250*time.Millisecond, settledAt(l, want))
	fn := func(_ context.Context, j job) (int, error) {
		if j.key == "slow" {
			l.note("slow")
		} else {
			l.note("fast")
		}
		return j.id, nil
	}
	runJobs(t, "RunOnEach", slices.Values(jobsOf(keys...)), fn, len(keys), trimeter.MaxAtOnce(4), trimeter.WithClock(clk),
		trimeter.PerKey(jobKey, trimeter.MaxPerSecond(1)))
	stop()
	if got := l.of("fast"); len(got) != fast || got[fast-1] != 0 {
		t.Errorf("fast keys started at %v, want all at 0", got)
	}
	if got, want := l.of("slow"), []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("slow key started at %v, want %v", got, want)
	}
}

func TestPerKeyStopsPullingBeyondTheLookahead(t *testing.T) {
	// One key's backlog is longer than the lookahead: pulling stalls
	// until it drains, within MaxAtOnce + BufferSize + lookahead + 1.
	const atOnce, buffer, lookahead, backlog = 2, 1, 3, 20
	release := make(chan struct{})
	started, pulled := &counter{}, &counter{}
	var received, over atomic.Int64
	in := newProbe(backlog + 10)
	in.onPull = func(int) {
		pulled.add(1)
		if excess := in.pulled.Load() - received.Load(); excess > atOnce+buffer+lookahead+1 {
			over.Store(excess)
		}
	}
	keyOf := func(i int) string {
		if i < backlog {
			return "slow"
		}
		return fmt.Sprint("fast", i)
	}
	fn := func(_ context.Context, i int) (int, error) {
		if started.add(1) == 1 {
			<-release
		}
		return i, nil
	}
	go func() {
		started.await(t, 1, "the slow key's first job")
		pulled.await(t, lookahead+1, "inputs pulled ahead while the first is stuck")
		settle(in.pulled.Load)
		if s := started.load(); s != 1 {
			t.Errorf("%d jobs started while the slow key was busy, want 1", s)
		}
		close(release)
	}()
	n := 0
	for _, err := range trimeter.AMap(context.Background(), in.seq(), fn, trimeter.MaxAtOnce(atOnce), trimeter.BufferSize(buffer),
		trimeter.Lookahead(lookahead), trimeter.PerKey(keyOf, trimeter.MaxAtOnce(1))) {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		received.Add(1)
		n++
	}
	if n != backlog+10 {
		t.Errorf("%d results, want %d", n, backlog+10)
	}
	if e := over.Load(); e != 0 {
		t.Errorf("%d inputs pulled beyond those received, want at most %d", e, atOnce+buffer+lookahead+1)
	}
	checkCleanedUp(t, in)
}

// nonKeyed is a shared meter that is not a throttle.Keyed.
type nonKeyed struct{}

func (nonKeyed) Acquire(context.Context) (throttle.Permit, error) { return nil, nil }

func intKey(v int) int { return v % 3 }

// pipelineEntryPoints are Then and ThenOutcomes seen as entryPoint: their
// input is the plain inputs, wrapped as an upstream stage's output.
var pipelineEntryPoints = []entryPoint{
	{"Then", func(t *testing.T, inputs iter.Seq[int], fn func(context.Context, int) (int, error), opts ...trimeter.Option) error {
		got := collect(trimeter.Then(context.Background(), withNilErrors(inputs), fn, opts...))
		if len(got) != 1 || got[0].v != 0 {
			t.Errorf("yielded %v, want one error alone", got)
			return nil
		}
		return got[0].err
	}},
	{"ThenOutcomes", func(t *testing.T, inputs iter.Seq[int], fn func(context.Context, int) (int, error), opts ...trimeter.Option) error {
		return soleRunError(t, trimeter.ThenOutcomes(context.Background(), asOutcomes(inputs), fn, opts...))
	}},
}

func withNilErrors(seq iter.Seq[int]) iter.Seq2[int, error] {
	return func(yield func(int, error) bool) {
		for v := range seq {
			if !yield(v, nil) {
				return
			}
		}
	}
}

func asOutcomes(seq iter.Seq[int]) iter.Seq2[trimeter.Input[int], trimeter.Outcome[int]] {
	return func(yield func(trimeter.Input[int], trimeter.Outcome[int]) bool) {
		i := 0
		for v := range seq {
			if !yield(trimeter.Input[int]{Index: i, Value: v}, trimeter.Outcome[int]{Value: v}) {
				return
			}
			i++
		}
	}
}

// brokenKeyed is a brokenMeter with a meter per key: itself.
type brokenKeyed struct{ *brokenMeter }

func (m brokenKeyed) ForKey(string) throttle.Meter { return m }

func TestPerKeyBadOptions(t *testing.T) {
	mon := &throttle.Monitor{}
	cases := []struct {
		opt  trimeter.Option
		want []string
		// found once the key function is known to fit the inputs: RunAll's
		// and RunAny's inputs are functions, so intKey does not
		afterKeyType bool
	}{
		{trimeter.PerKey(intKey, trimeter.Ordered()), []string{"PerKey", "Ordered()"}, false},
		{trimeter.PerKey(intKey, trimeter.BufferSize(2)), []string{"PerKey", "BufferSize(2)"}, false},
		{trimeter.PerKey(intKey, trimeter.KeepGoing()), []string{"PerKey", "KeepGoing()"}, false},
		{trimeter.PerKey(intKey, trimeter.Retry(3)), []string{"PerKey", "Retry(3)"}, false},
		{trimeter.PerKey(intKey, trimeter.Backoff(time.Second, 2*time.Second)), []string{"PerKey", "Backoff(1s, 2s)"}, false},
		{trimeter.PerKey(intKey, trimeter.Lookahead(5)), []string{"PerKey", "Lookahead(5)"}, false},
		{trimeter.PerKey(intKey, trimeter.WithClock(newFakeClock())), []string{"PerKey", "WithClock"}, false},
		{trimeter.PerKey(intKey, trimeter.Watch(mon)), []string{"PerKey", "Watch"}, false},
		{trimeter.PerKey(intKey, trimeter.PerKey(intKey)), []string{"PerKey inside PerKey"}, false},
		{trimeter.PerKey(intKey, trimeter.MaxAtOnce(0)), []string{"PerKey: MaxAtOnce(0)"}, false},
		{trimeter.PerKey(intKey, trimeter.MaxPerSecond(-1)), []string{"PerKey: MaxPerSecond(-1)"}, false},
		{trimeter.PerKey(intKey, trimeter.MaxPerSecond(1e-7)), []string{"bad option: PerKey: MaxPerSecond(1e-07)"}, true},
		{trimeter.PerKey(intKey, trimeter.WithMeter(brokenKeyed{&brokenMeter{err: errors.New("meter: bad")}})),
			[]string{"bad option: PerKey: WithMeter(trimeter_test.brokenKeyed): meter: bad"}, true},
		{trimeter.PerKey(intKey, trimeter.MaxBurst(0)), []string{"PerKey: MaxBurst(0)"}, false},
		{trimeter.PerKey(intKey, nil), []string{"PerKey: option 0 is nil"}, false},
		{trimeter.PerKey(intKey, trimeter.WithMeter(nonKeyed{})), []string{"PerKey", "throttle.Keyed"}, true},
		{trimeter.PerKey[int, int](nil), []string{"PerKey(nil)"}, false},
		{trimeter.PerKey(func(s string) string { return s }), []string{"PerKey", "string", "int"}, false},
		{trimeter.PerKey(func(j job) string { return j.key }, trimeter.MaxAtOnce(1)), []string{"PerKey", "trimeter_test.job", "int"}, false},
	}
	for _, ep := range append(slices.Clone(entryPoints), pipelineEntryPoints...) {
		for _, c := range cases {
			if c.afterKeyType && (ep.name == "RunAll" || ep.name == "RunAny") {
				continue
			}
			t.Run(fmt.Sprintf("%s reports %s and runs nothing", ep.name, c.want), func(t *testing.T) {
				p := newProbe(3)
				var calls atomic.Int64
				fn := func(context.Context, int) (int, error) { calls.Add(1); return 0, nil }
				err := ep.call(t, p.seq(), fn, trimeter.MaxAtOnce(2), c.opt)
				for _, w := range c.want {
					checkBadOption(t, err, w)
				}
				if calls.Load() != 0 || p.pulled.Load() != 0 {
					t.Errorf("fn called %d times, %d inputs pulled; want none", calls.Load(), p.pulled.Load())
				}
			})
			if ep.name == "RunAll" || ep.name == "RunAny" {
				continue // a good PerKey for their inputs would need another key function
			}
			// A later, good PerKey replaces the bad one, and the call
			// still fails: a bad value fails it wherever it is.
			t.Run(fmt.Sprintf("%s reports %s before a good PerKey", ep.name, c.want), func(t *testing.T) {
				p := newProbe(3)
				var calls atomic.Int64
				fn := func(context.Context, int) (int, error) { calls.Add(1); return 0, nil }
				err := ep.call(t, p.seq(), fn, trimeter.MaxAtOnce(2), c.opt, trimeter.PerKey(intKey))
				for _, w := range c.want {
					checkBadOption(t, err, w)
				}
				if calls.Load() != 0 || p.pulled.Load() != 0 {
					t.Errorf("fn called %d times, %d inputs pulled; want none", calls.Load(), p.pulled.Load())
				}
			})
		}
	}
}

func TestPerKeyUnderOrderedKeepsInputOrder(t *testing.T) {
	const seeds, n = 60, 40
	for seed := range uint64(seeds) {
		r := rand.New(rand.NewPCG(seed, 7))
		keys := 1 + r.IntN(4)
		perKey := 1 + r.IntN(2)
		opts := []trimeter.Option{
			trimeter.Ordered(),
			trimeter.MaxAtOnce(1 + r.IntN(4)),
			trimeter.BufferSize(r.IntN(3)),
			trimeter.Lookahead(1 + r.IntN(8)),
			trimeter.PerKey(func(v int) int { return v % keys }, trimeter.MaxAtOnce(perKey)),
		}
		attempts := 1 + r.IntN(2)
		if attempts > 1 {
			opts = append(opts, trimeter.Retry(attempts), trimeter.Backoff(time.Microsecond, time.Microsecond))
		}
		spins := make([]int, n)
		fails := make([]bool, n)
		for i := range spins {
			spins[i] = r.IntN(4)
			fails[i] = attempts > 1 && r.IntN(3) == 0
		}
		var gauges [4]gauge
		var tries [n]atomic.Int64
		fn := func(_ context.Context, v int) (int, error) {
			g := &gauges[v%keys]
			g.enter()
			defer g.leave()
			for range spins[v] {
				time.Sleep(time.Duration(spins[v]) * time.Microsecond)
			}
			if tries[v].Add(1) == 1 && fails[v] {
				return 0, errBoom
			}
			return v, nil
		}
		vs := runWithin(t, fmt.Sprintf("seed %d", seed), func(ctx context.Context) iter.Seq2[int, error] {
			return trimeter.AMap(ctx, newProbe(n).seq(), fn, opts...)
		})
		if t.Failed() {
			t.Fatalf("seed %d failed", seed)
		}
		want := make([]int, n)
		for i := range want {
			want[i] = i
		}
		if !slices.Equal(vs, want) {
			t.Errorf("seed %d: got %v, want 0..%d in order", seed, vs, n-1)
		}
		for k := range keys {
			if p := gauges[k].peak.Load(); p > int64(perKey) {
				t.Errorf("seed %d: key %d ran %d at once, want at most %d", seed, k, p, perKey)
			}
		}
	}
}

func TestPerKeyManyKeys(t *testing.T) {
	const keys = 1500
	t.Run("each key's MaxAtOnce holds across sweeps", func(t *testing.T) {
		var mu sync.Mutex
		running := make(map[int]int)
		fn := func(_ context.Context, v int) error {
			mu.Lock()
			running[v%keys]++
			n := running[v%keys]
			mu.Unlock()
			if n > 1 {
				t.Errorf("key %d ran %d jobs at once", v%keys, n)
			}
			mu.Lock()
			running[v%keys]--
			mu.Unlock()
			return nil
		}
		if err := trimeter.RunOnEach(context.Background(), newProbe(3*keys).seq(), fn,
			trimeter.MaxAtOnce(16), trimeter.PerKey(func(v int) int { return v % keys }, trimeter.MaxAtOnce(1))); err != nil {
			t.Fatalf("unexpected error %v", err)
		}
	})
	t.Run("each key's bucket survives sweeps", func(t *testing.T) {
		// Every key comes twice: 0..keys-1, then again. Each key may start
		// once a second, so every second round starts exactly at 1s,
		// however many keys the scheduler keeps.
		clk := newFakeClock()
		l := newTimeline(clk)
		want := map[string]func(time.Duration) int{
			"first": func(time.Duration) int { return keys },
			"second": func(e time.Duration) int {
				if e < time.Second {
					return 0
				}
				return keys
			},
		}
		stop := stepWhen(t, clk, 500*time.Millisecond, settledAt(l, want))
		fn := func(_ context.Context, v int) error {
			if v >= keys {
				l.note("second")
			} else {
				l.note("first")
			}
			return nil
		}
		err := trimeter.RunOnEach(context.Background(), newProbe(2*keys).seq(), fn, trimeter.WithClock(clk),
			trimeter.PerKey(func(v int) int { return v % keys }, trimeter.MaxPerSecond(1)))
		stop()
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		if got := l.of("second"); len(got) != keys || got[0] != time.Second || got[keys-1] != time.Second {
			t.Errorf("second round started from %v to %v (%d), want all %d at 1s", got[0], got[len(got)-1], len(got), keys)
		}
	})
}

// runWithin ranges over the seq that run builds and returns what it
// yielded. If the run has not ended within patience, it cancels the run's
// context, reports a deadlock and returns what came so far.
func runWithin[V any](t *testing.T, what string, run func(ctx context.Context) iter.Seq2[V, error]) []V {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type item struct {
		v   V
		err error
	}
	items := make(chan item)
	go func() {
		defer close(items)
		for v, err := range run(ctx) {
			items <- item{v, err}
		}
	}()
	var got []V
	timeout := time.After(patience)
	for {
		select {
		case it, ok := <-items:
			if !ok {
				return got
			}
			if it.err != nil {
				t.Errorf("%s: unexpected error %v", what, it.err)
			}
			got = append(got, it.v)
		case <-timeout:
			t.Errorf("%s: the run did not end after %d results: deadlock", what, len(got))
			cancel()
			for range items {
			}
			return got
		}
	}
}

func TestPerKeyOrderedLaterInputDoesNotTakeTheKeyOfAnEarlierOne(t *testing.T) {
	// Inputs 0, 1, 2 share key k, which runs one at a time. 1 waits aside
	// while 0 runs. The input sequence hands out 2 only once the loop has
	// received 0, that is, once k is free: k must go to 1, which waits
	// first. If 2 took it, its result would wait behind 1's, holding k,
	// and 1 could never start.
	received0 := make(chan struct{})
	inputs := func(yield func(int) bool) {
		for i := range 3 {
			if i == 2 {
				<-received0
			}
			if !yield(i) {
				return
			}
		}
	}
	var order []int
	var mu sync.Mutex
	fn := func(_ context.Context, v int) (int, error) {
		mu.Lock()
		order = append(order, v)
		mu.Unlock()
		return v, nil
	}
	got := runWithin(t, "Ordered with PerKey", func(ctx context.Context) iter.Seq2[int, error] {
		return func(yield func(int, error) bool) {
			for v, err := range trimeter.AMap(ctx, inputs, fn, trimeter.Ordered(), trimeter.MaxAtOnce(3),
				trimeter.PerKey(func(int) string { return "k" }, trimeter.MaxAtOnce(1))) {
				if v == 0 && err == nil {
					close(received0)
				}
				if !yield(v, err) {
					return
				}
			}
		}
	})
	if !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("got %v, want [0 1 2]", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(order, []int{0, 1, 2}) {
		t.Errorf("key k ran its inputs in the order %v, want [0 1 2]", order)
	}
}

// A key type may be comparable and still hold a value that a map cannot
// hash (a slice in an interface): such a key panics as the key function's
// own panic would, raised again in the caller as a *PanicError, and never
// in a worker, where it would end the process.
func TestPerKeyUnhashableKey(t *testing.T) {
	keyOf := func(v int) any {
		if v == 7 {
			return []int{v}
		}
		return v % 3
	}
	opts := []trimeter.Option{trimeter.PerKey(keyOf, trimeter.MaxAtOnce(1)), trimeter.MaxAtOnce(4)}
	runs := map[string]func(p *probe){
		"RunOnEach": func(p *probe) {
			_ = trimeter.RunOnEach(context.Background(), p.seq(), func(context.Context, int) error { return nil }, opts...)
		},
		"AMap": func(p *probe) {
			for range trimeter.AMap(context.Background(), p.seq(), square, opts...) {
			}
		},
	}
	for name, run := range runs {
		t.Run(name, func(t *testing.T) {
			p := newProbe(50)
			v := catch(func() { run(p) })
			pe, ok := v.(*trimeter.PanicError)
			if !ok {
				t.Fatalf("recovered %T (%v), want *trimeter.PanicError", v, v)
			}
			if err, ok := pe.Value.(runtime.Error); !ok || !strings.Contains(err.Error(), "unhashable") {
				t.Errorf("PanicError.Value is %v, want the runtime's error about an unhashable key", pe.Value)
			}
			checkCleanedUp(t, p)
		})
	}
}

// A key that is not equal to itself (a NaN) could be shared by no other
// input, and its state could never be swept: it panics as an unhashable
// key does.
func TestPerKeyNaNKey(t *testing.T) {
	p := newProbe(5)
	v := catch(func() {
		_ = trimeter.RunOnEach(context.Background(), p.seq(), func(context.Context, int) error { return nil },
			trimeter.PerKey(func(int) float64 { return math.NaN() }, trimeter.MaxAtOnce(1)))
	})
	pe, ok := v.(*trimeter.PanicError)
	if !ok || !strings.Contains(fmt.Sprint(pe.Value), "not equal to itself") {
		t.Fatalf("recovered %v, want a *PanicError saying the key is not equal to itself", v)
	}
	checkCleanedUp(t, p)
}

// The first bad option is the one reported, inside PerKey too.
func TestPerKeyReportsTheFirstBadOption(t *testing.T) {
	err := trimeter.RunOnEach(context.Background(), newProbe(1).seq(), func(context.Context, int) error { return nil },
		trimeter.MaxAtOnce(0), trimeter.PerKey(intKey, trimeter.MaxAtOnce(-1)))
	checkBadOption(t, err, "MaxAtOnce(0)")
}

// The input type is named even when it is an interface type.
func TestPerKeyNamesAnInterfaceInputType(t *testing.T) {
	err := trimeter.RunOnEach(context.Background(), slices.Values([]any{1}), func(context.Context, any) error { return nil },
		trimeter.PerKey(func(s string) string { return s }))
	checkBadOption(t, err, "the inputs are interface {}")
}

// Ordered has no results to order in RunOnEach: under PerKey it must not
// keep a slot back for an input waiting for its key. Here a's first call
// returns only once b's has started, which it cannot while a slot is kept
// for a's second input.
func TestRunOnEachIgnoresOrdered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), patience) // a watchdog
	defer cancel()
	bStarted := make(chan struct{})
	fn := func(ctx context.Context, v string) error {
		switch v {
		case "a0":
			select {
			case <-bStarted:
			case <-ctx.Done():
				return ctx.Err()
			}
		case "b2":
			close(bStarted)
		}
		return nil
	}
	err := trimeter.RunOnEach(ctx, slices.Values([]string{"a0", "a1", "b2"}), fn, trimeter.MaxAtOnce(2), trimeter.Ordered(),
		trimeter.PerKey(func(v string) byte { return v[0] }, trimeter.MaxAtOnce(1)))
	if err != nil {
		t.Fatalf("got %v, want b's call to start beside a's", err)
	}
}

// An input set aside until the clock lets its key start again (its rate,
// or its push-back's pause) starts once that time has come, even while
// inputs of other keys could start at once and keep coming: it does not
// wait for the source to end.
func TestPerKeyInputWaitingForTheClockIsNotStarved(t *testing.T) {
	cases := map[string]struct {
		keyOpts []trimeter.Option
		err     func(v int) error
	}{
		"its key's rate": {
			keyOpts: []trimeter.Option{trimeter.MaxPerSecond(1)},
			err:     func(int) error { return nil },
		},
		"its key's pause": {
			keyOpts: []trimeter.Option{trimeter.MaxAtOnce(1)},
			err: func(v int) error {
				if v == 0 {
					return trimeter.Pushback(time.Second, errBusy)
				}
				return nil
			},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			// Inputs 0 and 1 share a key; every later input has one of
			// its own. Input 1 waits for a second of the clock after input
			// 0 (its token, or its push-back when it ends), which the loop
			// moves on by ten once it has input 0's result and five in all.
			// Then the other inputs that begin while input 1 still waits
			// aside (the monitor says so, from the moment the scheduler
			// takes it) are counted: a goroutine that has been chosen may
			// be slow to begin, or to hand its result on, when the machine
			// is loaded; the choice is what is tested.
			clock := testclock.New()
			mon := &throttle.Monitor{}
			keyOf := func(v int) string {
				if v < 2 {
					return "shared"
				}
				return fmt.Sprint("own", v)
			}
			var moved atomic.Bool
			var overtook atomic.Int64
			fn := func(_ context.Context, v int) (int, error) {
				if v >= 2 && moved.Load() && mon.Stats().Waiting > 0 {
					overtook.Add(1)
				}
				return v, c.err(v)
			}
			const n = 200
			k, one := 0, false
			seen0 := false
			for v, err := range trimeter.AMap(context.Background(), newProbe(n).seq(), fn,
				trimeter.MaxAtOnce(2), trimeter.KeepGoing(), trimeter.WithClock(clock), trimeter.Watch(mon),
				trimeter.PerKey(keyOf, c.keyOpts...)) {
				if err != nil && !errors.Is(err, errBusy) {
					t.Fatal(err)
				}
				seen0 = seen0 || v == 0
				one = one || (v == 1 && err == nil)
				if !moved.Load() && seen0 && k >= 5 {
					moved.Store(true)
					clock.Advance(10 * time.Second)
				}
				k++
			}
			// Once the clock has moved, at most the two tasks starting and
			// the input the starter holds begin before input 1 is taken.
			if !one || !moved.Load() || overtook.Load() > 3 {
				t.Errorf("%d inputs began while input 1 waited aside after the clock moved, want at most 3", overtook.Load())
			}
		})
	}
}

// A key's meter that says how long until it has a permit (a rate) is taken
// at its word: its inputs start when its tokens come, not at the next
// poll of a meter that cannot say.
func TestPerKeyMeterThatSaysWhenIsTakenAtItsWord(t *testing.T) {
	clk := newFakeClock()
	l := newTimeline(clk)
	keys := slices.Repeat([]string{"api"}, 8)
	noted := make(chan struct{}, len(keys))
	fn := func(_ context.Context, j job) (int, error) {
		l.note(j.key)
		noted <- struct{}{}
		return j.id, nil
	}
	// The clock moves by a millisecond once a task has noted its start
	// and the run waits on the clock: never while a task that has started
	// has not noted it yet (the run may wait on the clock then, for the
	// next input, while it pulls another). A run that starts nothing on
	// the clock it waits for gets its steps all the same, after a while,
	// and fails the check below instead of hanging.
	ctx, cancel := context.WithCancel(context.Background())
	var stepping sync.WaitGroup
	stepping.Add(1)
	go func() {
		defer stepping.Done()
		for {
			select {
			case <-noted:
			case <-time.After(patience / 8):
			case <-ctx.Done():
				return
			}
			if clk.BlockUntilContext(ctx, 1) != nil {
				return
			}
			clk.Advance(time.Millisecond)
		}
	}()
	runJobs(t, "RunOnEach", slices.Values(jobsOf(keys...)), fn, len(keys), trimeter.MaxAtOnce(1), trimeter.WithClock(clk),
		trimeter.PerKey(jobKey, trimeter.WithMeter(&keyedMeters{newMeter: func() throttle.Meter {
			return throttle.NewRate(1000, 1, throttle.WithClock(clk))
		}})))
	cancel()
	stepping.Wait()
	var want []time.Duration
	for i := range len(keys) {
		want = append(want, time.Duration(i)*time.Millisecond)
	}
	if got := l.of("api"); !slices.Equal(got, want) {
		t.Errorf("started at %v, want one a millisecond: %v", got, want)
	}
}

// Another key's input gets past a run of as many blocked inputs as the
// lookahead: 64 by default.
func TestPerKeyLookaheadGetsPastARunOfThatManyBlockedInputs(t *testing.T) {
	for _, lc := range []struct {
		name string
		run  int
		opts []trimeter.Option
	}{
		{"default lookahead, a run of 64", 64, nil},
		{"Lookahead(3), a run of 3", 3, []trimeter.Option{trimeter.Lookahead(3)}},
		{"Lookahead(1), a run of 1", 1, []trimeter.Option{trimeter.Lookahead(1)}},
	} {
		t.Run(lc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), patience) // a watchdog
			defer cancel()
			// a starts and holds its key; a run of a's waits aside; b comes last.
			inputs := append(slices.Repeat([]string{"a"}, lc.run+1), "b")
			bStarted := make(chan struct{})
			fn := func(ctx context.Context, k string) error {
				if k == "b" {
					close(bStarted)
					return nil
				}
				select {
				case <-bStarted:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			opts := append([]trimeter.Option{trimeter.MaxAtOnce(8), trimeter.PerKey(func(k string) string { return k }, trimeter.MaxAtOnce(1))}, lc.opts...)
			if err := trimeter.RunOnEach(ctx, slices.Values(inputs), fn, opts...); err != nil {
				t.Fatalf("RunOnEach = %v: b did not get past the run of %d blocked a's", err, lc.run)
			}
		})
	}
}

// A limit raised on a key's meter of package throttle reaches an input
// waiting aside for that meter at once, not when the wait the meter gave
// is over: an hour for the rate here, the 5 ms poll for the concurrency
// meter, which cannot say how long. The clock moves by less than either.
func TestPerKeyRaisedMeterLimitReachesAnInputWaitingAside(t *testing.T) {
	cases := map[string]struct {
		meter   func(clockwork.Clock) throttle.Meter
		raise   func(throttle.Meter) error
		advance time.Duration // what the raised limit needs
	}{
		"Rate.SetRate": {
			meter: func(clk clockwork.Clock) throttle.Meter {
				return throttle.NewRate(1.0/3600, 1, throttle.WithClock(clk))
			},
			raise:   func(m throttle.Meter) error { return m.(*throttle.Rate).SetRate(1000) },
			advance: time.Second,
		},
		"Concurrency.SetLimit": {
			meter: func(clockwork.Clock) throttle.Meter { return throttle.NewConcurrency(1) },
			raise: func(m throttle.Meter) error { return m.(*throttle.Concurrency).SetLimit(2) },
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			clk := newFakeClock()
			ctx, cancel := context.WithTimeout(context.Background(), patience) // a watchdog
			defer cancel()
			meters := &keyedMeters{newMeter: func() throttle.Meter { return c.meter(clk) }}
			mon := &throttle.Monitor{}
			a2started := make(chan struct{})
			fn := func(ctx context.Context, v string) (string, error) {
				if v == "a2" {
					close(a2started)
					return v, nil
				}
				select { // a1 holds its key's permit until a2 has started
				case <-a2started:
					return v, nil
				case <-ctx.Done():
					return "", ctx.Err()
				}
			}
			done := make(chan []string, 1)
			go func() {
				var got []string
				for v, err := range trimeter.AMap(ctx, slices.Values([]string{"a1", "a2"}), fn,
					trimeter.MaxAtOnce(2), trimeter.WithClock(clk), trimeter.Watch(mon),
					trimeter.PerKey(func(v string) string { return v[:1] }, trimeter.WithMeter(meters))) {
					if err != nil {
						v = err.Error()
					}
					got = append(got, v)
				}
				done <- got
			}()
			eventually(t, func() bool { return mon.Stats().Waiting == 1 }, "a2 to wait aside")
			if err := clk.BlockUntilContext(ctx, 1); err != nil { // the run sleeps until the meter's wait is over
				t.Fatal(err)
			}
			if err := c.raise(meters.ForKey("a")); err != nil {
				t.Fatal(err)
			}
			clk.Advance(c.advance)
			// a1 returns once a2 has started: their results may come in
			// either order, but both come only if a2 started.
			if got := slices.Sorted(slices.Values(<-done)); !slices.Equal(got, []string{"a1", "a2"}) {
				t.Errorf("got %v, want a1 and a2: a2 did not start when the limit was raised", got)
			}
		})
	}
}

// A key's meter may set a limit while the run asks it for a key's meter
// (ForKey), and another goroutine may set its keys' limits under a lock
// that ForKey takes too: neither waits for the run, which calls ForKey
// while it holds its own lock.
func TestPerKeyMeterThatSetsLimitsDoesNotDeadlockTheRun(t *testing.T) {
	cases := map[string]struct {
		setInForKey bool // ForKey sets the key's rate each time
		setAll      bool // another goroutine sets every key's rate, under the meter's lock
	}{
		"SetRate in ForKey":                            {setInForKey: true},
		"SetRate on every key, from another goroutine": {setAll: true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			meters := &settingMeters{rates: map[string]*throttle.Rate{}, setInForKey: c.setInForKey}
			// Inputs until the limits have been set 50 times at least: of
			// 3,000 keys, which the run forgets and asks ForKey for again.
			inputs := func(yield func(int) bool) {
				for i := 0; i < 2000 || (c.setAll && meters.sets.Load() < 50); i++ {
					if !yield(i) {
						return
					}
				}
			}
			done := make(chan error, 1)
			go func() {
				done <- trimeter.RunOnEach(context.Background(), inputs, func(context.Context, int) error { return nil },
					trimeter.MaxAtOnce(4), trimeter.PerKey(func(v int) int { return v % 3000 }, trimeter.WithMeter(meters)))
			}()
			if c.setAll {
				stop := make(chan struct{})
				defer close(stop)
				go func() {
					for {
						select {
						case <-stop:
							return
						default:
							meters.setAll()
							runtime.Gosched()
						}
					}
				}()
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(patience):
				t.Fatal("the run is deadlocked")
			}
		})
	}
}

// settingMeters gives each key a rate fast enough never to hold a start
// back, and sets the rates again: in ForKey, or in setAll.
type settingMeters struct {
	mu          sync.Mutex
	rates       map[string]*throttle.Rate
	setInForKey bool
	sets        atomic.Int64 // calls of setAll
}

func (m *settingMeters) ForKey(key string) throttle.Meter {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rates[key]
	if r == nil {
		r = throttle.NewRate(1e6, 1000)
		m.rates[key] = r
	}
	if m.setInForKey {
		if err := r.SetRate(1e6); err != nil {
			panic(err)
		}
	}
	return r
}

func (m *settingMeters) setAll() {
	defer m.sets.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.rates {
		if err := r.SetRate(1e6); err != nil {
			panic(err)
		}
	}
}

func (m *settingMeters) Acquire(ctx context.Context) (throttle.Permit, error) {
	return m.ForKey("").Acquire(ctx)
}

// A limit raised while the run asks a key's meter, between the meter's
// refusal and the input's setting aside, reaches the input too.
func TestPerKeyLimitRaisedWhileTheMeterIsAskedReachesTheInput(t *testing.T) {
	clk := newFakeClock()
	ctx, cancel := context.WithTimeout(context.Background(), patience) // a watchdog
	defer cancel()
	rate := throttle.NewRate(1.0/3600, 1, throttle.WithClock(clk))
	meter := &raisingRate{Rate: rate}
	mon := &throttle.Monitor{}
	done := make(chan []string, 1)
	go func() {
		var got []string
		for v, err := range trimeter.AMap(ctx, slices.Values([]string{"a1", "a2"}), func(_ context.Context, v string) (string, error) { return v, nil },
			trimeter.MaxAtOnce(2), trimeter.WithClock(clk), trimeter.Watch(mon),
			trimeter.PerKey(func(v string) string { return v[:1] }, trimeter.WithMeter(&keyedMeters{newMeter: func() throttle.Meter { return meter }}))) {
			if err != nil {
				v = err.Error()
			}
			got = append(got, v)
		}
		done <- got
	}()
	eventually(t, func() bool { return mon.Stats().Waiting == 1 && meter.raised.Load() }, "a2 to wait aside")
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second) // enough at the raised rate, not at the first one
	if got := <-done; !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("got %v, want a1 then a2: a2 waited out the wait the meter gave before it was raised", got)
	}
}

// raisingRate raises its rate to 1000/s when it first turns an attempt
// away, before it answers: as another goroutine might at that instant.
type raisingRate struct {
	*throttle.Rate
	raised atomic.Bool
}

func (r *raisingRate) TryAcquire(ctx context.Context) (throttle.Permit, time.Duration, error) {
	p, wait, err := r.Rate.TryAcquire(ctx)
	if p == nil && err == nil && r.raised.CompareAndSwap(false, true) {
		if err := r.Rate.SetRate(1000); err != nil {
			panic(err)
		}
	}
	return p, wait, err
}

// Under Ordered, an input of another key starts while a key's earlier
// input waits aside for its key's MaxAtOnce alone, with a call slot free:
// the slot that Ordered keeps for the earliest waiting input is not needed
// then, since the delivery of the task that holds its key's slot frees a
// call slot too. Here A0 runs until B has started.
func TestOrderedLetsAnotherKeyPastAnInputWaitingForItsKeysSlot(t *testing.T) {
	keys := []string{"A", "A", "B"}
	bStarted := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fn := func(ctx context.Context, v int) (int, error) {
		switch {
		case keys[v] == "B":
			close(bStarted)
		case v == 0:
			select {
			case <-bStarted:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		return v, nil
	}
	watchdog := time.AfterFunc(patience, cancel)
	defer watchdog.Stop()
	var got []int
	for v, err := range trimeter.AMap(ctx, slices.Values([]int{0, 1, 2}), fn,
		trimeter.MaxAtOnce(2), trimeter.Ordered(), trimeter.Lookahead(1),
		trimeter.PerKey(func(v int) string { return keys[v] }, trimeter.MaxAtOnce(1))) {
		if err != nil {
			t.Fatalf("B did not start while A0 ran, with a call slot and its key free: %v", err)
		}
		got = append(got, v)
	}
	if !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("got %v, want 0, 1, 2 in order", got)
	}
}

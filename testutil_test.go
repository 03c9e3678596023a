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

	"github.com/jonboulle/clockwork"
	"go.uber.org/goleak"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/internal/testclock"
	"github.com/trimeter-go/trimeter/throttle"
)

// patience is how long a test waits for something that must happen before
// it reports a failure. It is a watchdog against hangs, never a way to
// order events: every wait below ends as soon as its event happens.
const patience = 20 * time.Second

// epoch is where every fake clock of these tests starts.
var epoch = testclock.Start

// probe is an input sequence that counts the inputs pulled from it and
// notes when its own deferred cleanup has run.
type probe struct {
	n      int          // inputs 0..n-1; negative for an endless sequence
	onPull func(i int)  // called before input i is yielded; may be nil
	pulled atomic.Int64 // inputs pulled so far, over every range
	clean  atomic.Int64 // times the sequence's deferred cleanup ran
}

func newProbe(n int) *probe { return &probe{n: n} }

func (p *probe) seq() iter.Seq[int] {
	return func(yield func(int) bool) {
		defer p.clean.Add(1)
		for i := 0; p.n < 0 || i < p.n; i++ {
			p.pulled.Add(1)
			if p.onPull != nil {
				p.onPull(i)
			}
			if !yield(i) {
				return
			}
		}
	}
}

// checkCleanedUp asserts that the input sequence's cleanup ran and that no
// goroutine outlived the call. It must not be used with t.Parallel.
func checkCleanedUp(t *testing.T, p *probe) {
	t.Helper()
	if p.clean.Load() == 0 {
		t.Error("the input sequence's deferred cleanup did not run")
	}
	goleak.VerifyNone(t)
}

// gauge measures how many calls run at once, and the peak.
type gauge struct{ cur, peak atomic.Int64 }

func (g *gauge) enter() int64 {
	n := g.cur.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return n
		}
	}
}

func (g *gauge) leave() { g.cur.Add(-1) }

// counter is a count that tests can wait on.
type counter struct {
	mu      sync.Mutex
	n       int
	changed chan struct{}
}

func (c *counter) add(d int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += d
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
	return c.n
}

func (c *counter) load() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// await waits until the count is at least n. It reports a failure, and
// returns false, if that does not happen within patience.
func (c *counter) await(t testing.TB, n int, what string) bool {
	t.Helper()
	deadline := time.NewTimer(patience)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		if c.n >= n {
			c.mu.Unlock()
			return true
		}
		if c.changed == nil {
			c.changed = make(chan struct{})
		}
		ch := c.changed
		got := c.n
		c.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Errorf("%s: waited for %d, got %d", what, n, got)
			return false
		}
	}
}

// barrier holds the first n calls of wait until all n have arrived; later
// calls pass at once. It shows that n calls can run together.
type barrier struct {
	n       int
	arrived atomic.Int64
	all     chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, all: make(chan struct{})} }

func (b *barrier) wait(t testing.TB) {
	if a := b.arrived.Add(1); a == int64(b.n) {
		close(b.all)
	} else if a > int64(b.n) {
		return
	}
	select {
	case <-b.all:
	case <-time.After(patience):
		t.Errorf("only %d of %d calls ran at once", b.arrived.Load(), b.n)
	}
}

// awaitCancel blocks until ctx ends and returns its error. If it does not
// end within patience, it reports a failure.
func awaitCancel(t testing.TB, ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(patience):
		t.Errorf("a call's context was not cancelled")
		return errors.New("not cancelled")
	}
}

// catch runs f and returns what it panicked with, or nil.
func catch(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// checkPanicError asserts that v is a *trimeter.PanicError carrying want
// and a stack that goes through the function named where.
func checkPanicError(t *testing.T, v any, want any, where string) {
	t.Helper()
	pe, ok := v.(*trimeter.PanicError)
	if !ok {
		t.Fatalf("recovered %T (%v), want *trimeter.PanicError", v, v)
	}
	if pe.Value != want {
		t.Errorf("PanicError.Value = %v, want %v", pe.Value, want)
	}
	if !strings.Contains(string(pe.Stack), where) {
		t.Errorf("PanicError.Stack does not mention %s:\n%s", where, pe.Stack)
	}
}

// limitCase is one setting of the concurrency options.
type limitCase struct {
	name   string
	opts   []trimeter.Option
	atOnce int // MaxAtOnce, or 0 for none
	buffer int
}

var limitCases = []limitCase{
	{name: "with MaxAtOnce(1)", opts: []trimeter.Option{trimeter.MaxAtOnce(1)}, atOnce: 1},
	// Results reach the loop through a buffered channel (handoff.go).
	{name: "with MaxAtOnce(1) and BufferSize(3)", opts: []trimeter.Option{trimeter.MaxAtOnce(1), trimeter.BufferSize(3)}, atOnce: 1, buffer: 3},
	{name: "with MaxAtOnce(3)", opts: []trimeter.Option{trimeter.MaxAtOnce(3)}, atOnce: 3},
	{name: "with MaxAtOnce(2) and BufferSize(2)", opts: []trimeter.Option{trimeter.MaxAtOnce(2), trimeter.BufferSize(2)}, atOnce: 2, buffer: 2},
	{name: "without MaxAtOnce", atOnce: 0},
	// A meter makes workers take turns as the starter instead of being fed.
	{name: "with MaxAtOnce(3) and a shared meter", opts: []trimeter.Option{trimeter.MaxAtOnce(3), trimeter.WithMeter(throttle.NewConcurrency(1000))}, atOnce: 3},
	// A rate of 4,000 per second with a bucket of 40 hands the turn on by
	// the clock when the bucket runs dry (pacing.go).
	{name: "with MaxAtOnce(3) and a paced rate", opts: []trimeter.Option{trimeter.MaxAtOnce(3), trimeter.MaxPerSecond(4000), trimeter.MaxBurst(40)}, atOnce: 3},
}

// orderCase says whether results come in input order.
type orderCase struct {
	name    string
	ordered bool
}

var orderCases = []orderCase{{"in finish order", false}, {"under Ordered", true}}

// forLimitsAndOrders runs f as a subtest for every limit and order.
func forLimitsAndOrders(t *testing.T, sentence string, f func(t *testing.T, lc limitCase, ordered bool, opts []trimeter.Option)) {
	t.Helper()
	for _, lc := range limitCases {
		for _, oc := range orderCases {
			opts := slices.Clone(lc.opts)
			if oc.ordered {
				opts = append(opts, trimeter.Ordered())
			}
			t.Run(fmt.Sprintf("%s %s %s", sentence, lc.name, oc.name), func(t *testing.T) {
				f(t, lc, oc.ordered, opts)
			})
		}
	}
}

// below returns how many of the first calls may block together under
// limit atOnce (0 for none), at most want.
func below(atOnce, want int) int {
	if atOnce == 0 {
		return want
	}
	return min(want, atOnce-1)
}

// newFakeClock returns a fake clock at epoch.
func newFakeClock() *clockwork.FakeClock { return testclock.New().FakeClock }

// drive moves clk forward by step each time something waits on it and
// every other goroutine is blocked (testclock.Idle), until the returned
// stop is called; stop returns once driving has ended.
func drive(clk *clockwork.FakeClock, step time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for awaitIdleWaiter(ctx, clk) {
			clk.Advance(step)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// idleWithin bounds how long a driver waits in real time for the other
// goroutines to block before it moves a clock anyway: a watchdog against
// a goroutine that never blocks, far longer than any wait for the code
// under test to reach its next wait.
const idleWithin = time.Second

// awaitIdleWaiter waits until something waits on clk and every other
// goroutine is blocked. It returns false once ctx has ended.
func awaitIdleWaiter(ctx context.Context, clk *clockwork.FakeClock) bool {
	for {
		if clk.BlockUntilContext(ctx, 1) != nil {
			return false
		}
		testclock.AwaitIdle(ctx, idleWithin)
		if ctx.Err() != nil {
			return false
		}
		if testclock.Waiting(clk) {
			return true
		}
	}
}

// durations returns n random durations of 1 to max steps, from seed.
func durations(seed uint64, n int, step time.Duration, max int) []time.Duration {
	r := rand.New(rand.NewPCG(seed, seed))
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = time.Duration(1+r.IntN(max)) * step
	}
	return ds
}

// eventually waits until cond holds, letting other goroutines run (with
// testclock.Yield, so that testclock.Idle counts it as blocked). It
// reports a failure if cond does not hold within patience. It polls: use
// it only for state that no channel or counter announces.
func eventually(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("%s: never happened", what)
			return
		}
		testclock.Yield() // a poll: a driver may move the clock meanwhile
	}
}

// startLog is a meter that notes, on a fake clock, when each attempt was
// admitted. Passed with WithMeter, it comes before the call's own rate, so
// it is asked again at the instant the rate lets a task start; permits
// given back unused are not counted.
type startLog struct {
	clk   clockwork.Clock
	mu    sync.Mutex
	times []time.Duration // since epoch, in the order the attempts ended
}

func (l *startLog) Acquire(context.Context) (throttle.Permit, error) {
	return &logPermit{l, l.clk.Since(epoch)}, nil
}

// TryAcquire makes the log a throttle.Trier: asked with the rate, at one
// instant, rather than first and kept while the rate makes the task wait.
func (l *startLog) TryAcquire(ctx context.Context) (throttle.Permit, time.Duration, error) {
	p, err := l.Acquire(ctx)
	return p, 0, err
}

func (l *startLog) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.times = append(l.times, d)
}

func (l *startLog) sorted() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(slices.Values(l.times))
}

type logPermit struct {
	l  *startLog
	at time.Duration
}

func (p *logPermit) Done(o throttle.Outcome) {
	if o.Status != throttle.Unused {
		p.l.add(p.at)
	}
}

// checkRate asserts that starts (sorted, since the bucket was full) hold
// a token bucket of rate and burst: every window [s_i, s_j] holds at most
// burst + rate·(s_j-s_i) starts. It also asserts that the rate is reached:
// start k comes no later than the token bucket allows, give or take step.
func checkRate(t *testing.T, starts []time.Duration, rate float64, burst int, step time.Duration) {
	t.Helper()
	for i := range starts {
		for j := i + 1; j < len(starts); j++ {
			w := (starts[j] - starts[i]).Seconds()
			if float64(j-i+1) > float64(burst)+rate*w+1e-9 {
				t.Errorf("%d starts within %v (from %v), want at most %v", j-i+1, starts[j]-starts[i], starts[i], float64(burst)+rate*w)
			}
		}
	}
	interval := time.Duration(float64(time.Second) / rate)
	for k, s := range starts {
		ideal := time.Duration(max(0, k-burst+1)) * interval
		if s > ideal+step {
			t.Errorf("start %d at %v, want it at %v: the rate is not reached", k, s, ideal)
		}
	}
}

// soleRunError ranges over outcomes that must hold one run-level error and
// nothing else (an outcome at Index -1 with no value), and returns it.
func soleRunError(t *testing.T, outcomes iter.Seq2[trimeter.Input[int], trimeter.Outcome[int]]) error {
	t.Helper()
	var errs []error
	for in, o := range outcomes {
		if in.Index != -1 || o.Value != 0 {
			t.Errorf("yielded %+v, %+v; want Index -1 and no value", in, o)
		}
		errs = append(errs, o.Err)
	}
	if len(errs) != 1 {
		t.Errorf("yielded %d outcomes, want one", len(errs))
		return nil
	}
	return errs[0]
}

// keyedMeters is a family of meters that newMeter makes, one per key,
// shared by the calls that use it.
type keyedMeters struct {
	newMeter func() throttle.Meter
	mu       sync.Mutex
	m        map[string]throttle.Meter
}

func (k *keyedMeters) ForKey(key string) throttle.Meter {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = make(map[string]throttle.Meter)
	}
	if k.m[key] == nil {
		k.m[key] = k.newMeter()
	}
	return k.m[key]
}

func (k *keyedMeters) Acquire(ctx context.Context) (throttle.Permit, error) {
	return k.ForKey("").Acquire(ctx)
}

package trimeter_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"iter"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/throttle"
)

var (
	stressSeedFlag = flag.Uint64("stress.seed", 0, "make TestStress replay the run of this seed alone (or set TRIMETER_STRESS_SEED)")
	stressRunsFlag = flag.Int("stress.runs", 1000, "how many seeded runs TestStress makes")
)

// TestStress runs random pipelines, each from its own seed, and checks
// after every run what must hold whatever the timing: no goroutine leaks,
// the limits hold overall and per key, no input runs more often than its
// attempts allow, no result is lost or duplicated, Ordered keeps order,
// and panics reach the loop as they should. A failure names the seed;
// -stress.seed replays that run's configuration.
func TestStress(t *testing.T) {
	for _, seed := range stressSeeds(t) {
		r := newStressRun(t, seed)
		r.run()
		if t.Failed() {
			t.Fatalf("seed %d failed (%s): replay with go test -run TestStress -stress.seed=%d", seed, r, seed)
		}
	}
}

func stressSeeds(t *testing.T) []uint64 {
	seed := *stressSeedFlag
	if s := os.Getenv("TRIMETER_STRESS_SEED"); s != "" && seed == 0 {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("TRIMETER_STRESS_SEED=%q: %v", s, err)
		}
	}
	if seed != 0 {
		return []uint64{seed}
	}
	runs := *stressRunsFlag
	if testing.Short() {
		runs /= 5
	}
	base := uint64(time.Now().UnixNano())
	seeds := make([]uint64, runs)
	for i := range seeds {
		seeds[i] = mix(base + uint64(i))
	}
	return seeds
}

// mix is splitmix64: a well-spread 64-bit hash.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// stressItem flows through the stages: hops counts the stages it passed.
type stressItem struct{ id, hops int }

// stressErr is a failure the run chose to make.
type stressErr struct{ stage, id, attempt int }

func (e *stressErr) Error() string {
	return fmt.Sprintf("stage %d failed on input %d at attempt %d", e.stage, e.id, e.attempt)
}

type stressStage struct {
	atOnce, buffer      int // 0 for none
	ordered, keepGoing  bool
	keys, keyAtOnce     int     // keys 0: no PerKey; keyAtOnce 0: no per-key limit
	keyRate             float64 // per-key MaxPerSecond, 0 for none
	lookahead, attempts int     // lookahead 0: the default

	calls   []atomic.Int32 // attempts at each input
	running gauge
	perKey  []gauge
}

// stressOut is what the loop, or a stage downstream, received.
type stressOut struct {
	id   int // the input it came from; -1 when the error names none
	hops int
	err  error
}

type stressRun struct {
	t    *testing.T
	seed uint64
	rnd  uint64 // state of next

	mode     string // "values" (AMap, Then), "outcomes" (Outcomes, ThenOutcomes) or "each" (RunOnEach)
	n        int
	stages   []*stressStage
	failP    float64 // chance that an attempt fails
	pushP    float64 // chance that a failure is a push-back
	permP    float64 // chance that a failure is permanent
	sleepP   float64 // chance that an attempt sleeps a few microseconds
	slowInP  float64 // chance that the input sleeps a few microseconds before an item
	panicAt  [2]int  // stage (-1: the input) and input of the one panic; input -1 for none
	breakAt  int     // results after which the loop breaks; -1 never
	bodyBoom bool    // the loop panics instead of breaking
	cancelAt int     // results after which the loop cancels the context; -1 never
	bound    int64   // most inputs pulled beyond those received; -1 for no bound

	// shared, when not nil, is a concurrency meter every stage goes
	// through: sharedLimit attempts at most, across the stages.
	shared        throttle.Meter
	sharedLimit   int
	sharedRunning gauge

	ctx       context.Context
	cancel    context.CancelFunc
	pulled    atomic.Int64
	received  atomic.Int64
	over      atomic.Int64
	inStarted atomic.Bool
	inClean   atomic.Int32
	triggered atomic.Bool
	cancelled bool

	mu   sync.Mutex
	taps [][]stressOut // taps[s]: what stage s handed to stage s+1
}

type bodyPanic struct{ seed uint64 }

// next draws from the run's own generator: the configuration depends only
// on the seed.
func (r *stressRun) next(n int) int {
	r.rnd = mix(r.rnd)
	return int(r.rnd % uint64(n))
}

func (r *stressRun) chance(p float64) bool { return float64(r.next(1<<20)) < p*(1<<20) }

// roll is a number in [0, 1) fixed by the seed and its arguments, so that
// what a call does does not depend on the order the calls come in.
func (r *stressRun) roll(salt, stage, id, attempt int) float64 {
	h := mix(r.seed ^ mix(uint64(salt)<<48^uint64(stage)<<40^uint64(id)<<8^uint64(attempt)))
	return float64(h>>11) / (1 << 53)
}

func newStressRun(t *testing.T, seed uint64) *stressRun {
	r := &stressRun{t: t, seed: seed, rnd: seed}
	r.mode = []string{"values", "values", "outcomes", "each"}[r.next(4)]
	r.n = r.next(61)
	k := 1 + r.next(4)
	if r.mode == "each" {
		k = 1
	}
	for range k {
		r.stages = append(r.stages, r.newStage())
	}
	if r.chance(0.2) {
		r.sharedLimit = 1 + r.next(3)
		r.shared = throttle.NewConcurrency(r.sharedLimit)
	}
	r.failP = []float64{0, 0.05, 0.2, 0.5}[r.next(4)]
	r.pushP, r.permP = 0.3*float64(r.next(2)), 0.2*float64(r.next(2))
	r.sleepP = []float64{0, 0.1, 0.4}[r.next(3)]
	r.slowInP = []float64{0, 0, 0.3}[r.next(3)]
	r.panicAt = [2]int{0, -1}
	if r.n > 0 && r.chance(0.15) {
		r.panicAt = [2]int{r.next(k+1) - 1, r.next(r.n)}
	}
	r.breakAt, r.cancelAt = -1, -1
	if r.mode != "each" && r.chance(0.5) {
		r.breakAt = 1 + r.next(r.n+1)
		r.bodyBoom = r.chance(0.2)
	}
	if r.mode != "each" && r.chance(0.1) {
		r.cancelAt = 1 + r.next(r.n+1)
	}
	r.bound = -1
	if r.mode != "each" {
		r.bound = 0
		for _, st := range r.stages {
			if st.atOnce == 0 {
				r.bound = -1
				break
			}
			r.bound += int64(st.atOnce + st.buffer + 1)
			if st.keys > 0 {
				r.bound += int64(cmpOr(st.lookahead, 64))
			}
		}
	}
	r.taps = make([][]stressOut, k)
	return r
}

func cmpOr(v, or int) int {
	if v == 0 {
		return or
	}
	return v
}

func (r *stressRun) newStage() *stressStage {
	st := &stressStage{
		atOnce:    []int{0, 1, 1, 2, 3, 4}[r.next(6)],
		buffer:    []int{0, 0, 1, 2, 100}[r.next(5)], // 100: beyond a handoff channel's
		ordered:   r.chance(0.5),
		keepGoing: r.mode == "outcomes" || r.chance(0.5),
		attempts:  []int{1, 1, 2, 3}[r.next(4)],
	}
	if r.chance(0.5) {
		st.keys = 1 + r.next(4)
		st.keyAtOnce = r.next(3)
		if r.chance(0.2) {
			st.keyRate = 20000
		}
		st.lookahead = []int{0, 1, 2, 5}[r.next(4)]
		st.perKey = make([]gauge, st.keys)
	}
	st.calls = make([]atomic.Int32, r.n)
	return st
}

func (r *stressRun) String() string {
	s := fmt.Sprintf("%s, %d inputs, shared limit %d, fail %.2f push %.1f permanent %.1f sleep %.1f slow input %.1f, panic %v, break %d (panic %v), cancel %d",
		r.mode, r.n, r.sharedLimit, r.failP, r.pushP, r.permP, r.sleepP, r.slowInP, r.panicAt, r.breakAt, r.bodyBoom, r.cancelAt)
	for i, st := range r.stages {
		s += fmt.Sprintf("; stage %d: MaxAtOnce %d BufferSize %d Ordered %v KeepGoing %v keys %d per key %d/%v/s lookahead %d attempts %d",
			i, st.atOnce, st.buffer, st.ordered, st.keepGoing, st.keys, st.keyAtOnce, st.keyRate, st.lookahead, st.attempts)
	}
	return s
}

func (r *stressRun) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Errorf("seed %d: "+format, append([]any{r.seed}, args...)...)
}

func (r *stressRun) opts(st *stressStage) []trimeter.Option {
	var o []trimeter.Option
	if st.atOnce > 0 {
		o = append(o, trimeter.MaxAtOnce(st.atOnce))
	}
	o = append(o, trimeter.BufferSize(st.buffer))
	if st.ordered {
		o = append(o, trimeter.Ordered())
	}
	if st.keepGoing {
		o = append(o, trimeter.KeepGoing())
	}
	if st.keys > 0 {
		var inner []trimeter.Option
		if st.keyAtOnce > 0 {
			inner = append(inner, trimeter.MaxAtOnce(st.keyAtOnce))
		}
		if st.keyRate > 0 {
			inner = append(inner, trimeter.MaxPerSecond(st.keyRate), trimeter.MaxBurst(2))
		}
		keys := st.keys
		o = append(o, trimeter.PerKey(func(it stressItem) int { return it.id % keys }, inner...))
		if st.lookahead > 0 {
			o = append(o, trimeter.Lookahead(st.lookahead))
		}
	}
	if r.shared != nil {
		o = append(o, trimeter.WithMeter(r.shared))
	}
	if st.attempts > 1 {
		o = append(o, trimeter.Retry(st.attempts), trimeter.Backoff(time.Microsecond, 5*time.Microsecond))
	}
	return o
}

func (r *stressRun) panicValue() string { return fmt.Sprintf("stress panic %d", r.seed) }

// input is the first stage's input: items 0..n-1, which may panic.
func (r *stressRun) input() iter.Seq[stressItem] {
	return func(yield func(stressItem) bool) {
		r.inStarted.Store(true)
		defer r.inClean.Add(1)
		for i := range r.n {
			if r.panicAt == [2]int{-1, i} {
				r.triggered.Store(true)
				panic(r.panicValue())
			}
			if x := r.roll(3, -1, i, 0); x < r.slowInP {
				// A slow pull: under PerKey, inputs waiting aside start
				// meanwhile.
				time.Sleep(time.Duration(1+20*x/r.slowInP) * time.Microsecond)
			}
			if p := r.pulled.Add(1); r.bound >= 0 && p-r.received.Load() > r.bound {
				r.over.Store(p - r.received.Load())
			}
			if !yield(stressItem{id: i}) {
				return
			}
		}
	}
}

func (r *stressRun) fn(s int) func(context.Context, stressItem) (stressItem, error) {
	st := r.stages[s]
	return func(_ context.Context, it stressItem) (stressItem, error) {
		if it.hops != s || it.id < 0 || it.id >= r.n {
			r.fail("stage %d got %+v", s, it)
			return it, nil
		}
		k := int(st.calls[it.id].Add(1))
		if k > st.attempts {
			r.fail("stage %d ran input %d %d times, want at most %d", s, it.id, k, st.attempts)
		}
		st.running.enter()
		defer st.running.leave()
		r.sharedRunning.enter()
		defer r.sharedRunning.leave()
		if st.keys > 0 {
			g := &st.perKey[it.id%st.keys]
			g.enter()
			defer g.leave()
		}
		switch x := r.roll(1, s, it.id, k); {
		case x < r.sleepP:
			time.Sleep(time.Duration(1+20*x/r.sleepP) * time.Microsecond)
		case x < 2*r.sleepP:
			runtime.Gosched()
		}
		if r.panicAt == [2]int{s, it.id} && k == 1 {
			r.triggered.Store(true)
			panic(r.panicValue())
		}
		if r.roll(2, s, it.id, k) >= r.failP {
			return stressItem{id: it.id, hops: s + 1}, nil
		}
		err := error(&stressErr{s, it.id, k})
		switch x := r.roll(3, s, it.id, k); {
		case x < r.pushP:
			err = trimeter.Pushback(time.Duration(1+10*x/r.pushP)*time.Microsecond, err)
		case x < r.pushP+r.permP:
			err = trimeter.Permanent(err)
		}
		return stressItem{}, err
	}
}

// idOf tells which input a value or an error belongs to, or -1.
func idOf(v stressItem, err error) int {
	if err == nil {
		return v.id
	}
	var se *stressErr
	if errors.As(err, &se) {
		return se.id
	}
	return -1
}

func (r *stressRun) note(s int, o stressOut) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.taps[s] = append(r.taps[s], o)
}

// tap notes what stage s hands to the next stage: a plain iterator
// helper, as a user would write between stages.
func (r *stressRun) tap(s int, seq iter.Seq2[stressItem, error]) iter.Seq2[stressItem, error] {
	return func(yield func(stressItem, error) bool) {
		for v, err := range seq {
			r.note(s, stressOut{idOf(v, err), v.hops, err})
			if !yield(v, err) {
				return
			}
		}
	}
}

type outcomeSeq = iter.Seq2[trimeter.Input[stressItem], trimeter.Outcome[stressItem]]

func (r *stressRun) tapOutcomes(s int, seq outcomeSeq) outcomeSeq {
	return func(yield func(trimeter.Input[stressItem], trimeter.Outcome[stressItem]) bool) {
		for in, out := range seq {
			r.note(s, stressOut{in.Index, out.Value.hops, out.Err})
			if !yield(in, out) {
				return
			}
		}
	}
}

func (r *stressRun) run() {
	r.ctx, r.cancel = context.WithCancel(context.Background())
	defer r.cancel()
	// A run that hangs is reported, and its context cancelled so that it
	// can end and the next checks can run.
	watchdog := time.AfterFunc(patience, func() {
		r.fail("the run did not end within %v: deadlock? (%s)", patience, r)
		r.cancel()
	})
	var outs []stressOut
	var recovered any
	var broke bool
	switch r.mode {
	case "each":
		var err error
		if recovered, err = r.runEach(); recovered == nil {
			r.checkEachError(err)
		}
		if r.stages[0].keepGoing {
			err = nil // it stopped nothing
		}
		outs = []stressOut{{id: -1, err: err}} // for checkPanic
	case "values":
		seq := trimeter.AMap(r.ctx, r.input(), r.fn(0), r.opts(r.stages[0])...)
		for s := 1; s < len(r.stages); s++ {
			seq = trimeter.Then(r.ctx, r.tap(s-1, seq), r.fn(s), r.opts(r.stages[s])...)
		}
		outs, recovered, broke = consume(r, seq, func(v stressItem, err error) stressOut {
			return stressOut{idOf(v, err), v.hops, err}
		})
	case "outcomes":
		seq := trimeter.Outcomes(r.ctx, r.input(), r.fn(0), r.opts(r.stages[0])...)
		for s := 1; s < len(r.stages); s++ {
			seq = trimeter.ThenOutcomes(r.ctx, r.tapOutcomes(s-1, seq), r.fn(s), r.opts(r.stages[s])...)
		}
		outs, recovered, broke = consume(r, seq, func(in trimeter.Input[stressItem], out trimeter.Outcome[stressItem]) stressOut {
			if in.Index >= 0 && in.Value.id != in.Index {
				r.fail("outcome beside input %+v, whose value is not the input at its index", in)
			}
			if out.Err == nil && out.Value.id != in.Index {
				r.fail("outcome %+v beside input %d", out.Value, in.Index)
			}
			if id := idOf(out.Value, out.Err); out.Err != nil && id >= 0 && id != in.Index {
				r.fail("error %v beside input %d", out.Err, in.Index)
			}
			return stressOut{in.Index, out.Value.hops, out.Err}
		})
	}
	watchdog.Stop()
	goleak.VerifyNone(r.t)
	r.checkCommon()
	r.checkPanic(recovered, broke, outs)
	if r.mode == "each" {
		return
	}
	if recovered == nil {
		r.checkOutputs(outs, broke)
	}
	if !r.cancelled {
		r.checkOrder(outs)
	}
}

// consume ranges over seq as the loop of a user would, breaking,
// panicking or cancelling where the run says.
func consume[A, B any](r *stressRun, seq iter.Seq2[A, B], out func(A, B) stressOut) (outs []stressOut, recovered any, broke bool) {
	defer func() { recovered = recover() }()
	for a, b := range seq {
		r.received.Add(1)
		outs = append(outs, out(a, b))
		if len(outs) == r.cancelAt {
			r.cancelled = true
			r.cancel()
		}
		if len(outs) == r.breakAt {
			broke = true
			if r.bodyBoom {
				panic(bodyPanic{r.seed})
			}
			break
		}
	}
	return outs, nil, broke
}

func (r *stressRun) runEach() (recovered any, err error) {
	defer func() { recovered = recover() }()
	fn := r.fn(0)
	err = trimeter.RunOnEach(r.ctx, r.input(), func(ctx context.Context, it stressItem) error {
		_, err := fn(ctx, it)
		return err
	}, r.opts(r.stages[0])...)
	return nil, err
}

func (r *stressRun) checkEachError(err error) {
	st := r.stages[0]
	if err == nil {
		for id := range r.n {
			if st.calls[id].Load() == 0 {
				r.fail("RunOnEach returned nil, but input %d never ran", id)
			}
		}
		return
	}
	if !st.keepGoing {
		r.checkError(err)
		return
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		r.fail("RunOnEach kept going and returned %v, want joined ItemErrors", err)
		return
	}
	last := -1
	for _, e := range joined.Unwrap() {
		var ie *trimeter.ItemError
		if !errors.As(e, &ie) || ie.Index <= last || idOf(stressItem{}, ie.Err) != ie.Index {
			r.fail("joined error %v out of order or not an ItemError of its input", e)
			continue
		}
		last = ie.Index
		r.checkError(ie.Err)
	}
}

// checkCommon checks what holds however the run ended.
func (r *stressRun) checkCommon() {
	if started, clean := r.inStarted.Load(), r.inClean.Load(); (started && clean != 1) || (!started && clean != 0) {
		r.fail("the input ran its cleanup %d times (started: %v)", clean, started)
	}
	if e := r.over.Load(); e != 0 {
		r.fail("%d inputs pulled beyond those received, want at most %d", e, r.bound)
	}
	if p := r.sharedRunning.peak.Load(); r.shared != nil && p > int64(r.sharedLimit) {
		r.fail("%d calls at once through the shared meter, want at most %d", p, r.sharedLimit)
	}
	for s, st := range r.stages {
		if p := st.running.peak.Load(); st.atOnce > 0 && p > int64(st.atOnce) {
			r.fail("stage %d ran %d calls at once, want at most %d", s, p, st.atOnce)
		}
		for k := range st.perKey {
			if p := st.perKey[k].peak.Load(); st.keyAtOnce > 0 && p > int64(st.keyAtOnce) {
				r.fail("stage %d ran %d calls of key %d at once, want at most %d", s, p, k, st.keyAtOnce)
			}
		}
	}
}

func (r *stressRun) checkPanic(recovered any, broke bool, outs []stressOut) {
	switch {
	case r.bodyBoom && broke:
		if recovered != (bodyPanic{r.seed}) {
			r.fail("the loop body's panic came out as %v", recovered)
		}
	case recovered != nil:
		pe, ok := recovered.(*trimeter.PanicError)
		if !ok || pe.Value != r.panicValue() || !r.triggered.Load() {
			r.fail("recovered %v, want a PanicError of %q (made: %v)", recovered, r.panicValue(), r.triggered.Load())
		}
	case r.triggered.Load() && !broke && !r.cancelled:
		// A panic may go unseen only when something stopped its stage
		// first: a break, a cancel, or an error under fail-fast.
		if r.allKeepGoing() || !slices.ContainsFunc(outs, func(o stressOut) bool { return o.err != nil }) {
			r.fail("a panic was made but never reached the loop")
		}
	}
}

func (r *stressRun) allKeepGoing() bool {
	for _, st := range r.stages {
		if !st.keepGoing {
			return false
		}
	}
	return true
}

// checkOutputs checks what the loop received in a run that did not panic.
func (r *stressRun) checkOutputs(outs []stressOut, broke bool) {
	seen := make(map[int]bool)
	errs := 0
	for i, o := range outs {
		if o.err != nil {
			errs++
			if !r.cancelled || !errors.Is(o.err, context.Canceled) {
				r.checkError(o.err)
			}
			if !r.last().keepGoing && i != len(outs)-1 {
				r.fail("result %d came after the error %v under fail-fast", i, o.err)
			}
		} else if o.hops != len(r.stages) {
			r.fail("input %d came out after %d stages, want %d", o.id, o.hops, len(r.stages))
		}
		if o.id < 0 {
			continue
		}
		if seen[o.id] {
			r.fail("input %d came out twice", o.id)
		}
		seen[o.id] = true
	}
	if broke || r.cancelled {
		return
	}
	if errs > 1 && !r.last().keepGoing {
		r.fail("%d errors under fail-fast, want one at most", errs)
	}
	if (r.allKeepGoing() || errs == 0) && len(seen) != r.n {
		r.fail("%d inputs came out, want all %d", len(seen), r.n)
	}
}

func (r *stressRun) last() *stressStage { return r.stages[len(r.stages)-1] }

// checkError checks an error the run made: each attempt of one stage at
// one input, no more attempts than allowed, and no retry after a
// permanent error.
func (r *stressRun) checkError(err error) {
	var attemptsErrs []error
	if re := (*trimeter.RetryError)(nil); errors.As(err, &re) {
		attemptsErrs = re.Errs
	} else {
		attemptsErrs = []error{err}
	}
	var first *stressErr
	for i, e := range attemptsErrs {
		var se *stressErr
		if !errors.As(e, &se) {
			if r.cancelled && errors.Is(e, context.Canceled) && i == len(attemptsErrs)-1 {
				continue
			}
			r.fail("error %v is not one the run made", e)
			return
		}
		if first == nil {
			first = se
		}
		if se.stage != first.stage || se.id != first.id || se.attempt != i+1 {
			r.fail("attempt %d's error is %v, in %v", i+1, e, err)
		}
		var pe *trimeter.PushbackError
		if perm := !errors.As(e, &pe) && isPermanent(e); perm && i != len(attemptsErrs)-1 {
			r.fail("a permanent error was retried: %v", err)
		}
	}
	if first == nil {
		return
	}
	if st := r.stages[first.stage]; len(attemptsErrs) > st.attempts {
		r.fail("%d attempts in %v, want at most %d", len(attemptsErrs), err, st.attempts)
	}
}

// isPermanent tells a permanent error from a plain one: Permanent wraps
// the error, so the chain is one longer.
func isPermanent(e error) bool {
	_, plain := e.(*stressErr)
	return !plain
}

// checkOrder checks every stage under Ordered: what it handed on is its
// input in order, but for the error that ends a fail-fast stage.
func (r *stressRun) checkOrder(final []stressOut) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := make([]int, r.n)
	for i := range in {
		in[i] = i
	}
	for s, st := range r.stages {
		out := final
		if s < len(r.stages)-1 {
			out = r.taps[s]
		}
		ids := make([]int, 0, len(out))
		for i, o := range out {
			if o.err != nil && !st.keepGoing && i == len(out)-1 {
				break // the error that ended the stage, after the rest
			}
			ids = append(ids, o.id)
		}
		if st.ordered && (len(ids) > len(in) || !slices.Equal(ids, in[:len(ids)])) {
			r.fail("stage %d is ordered but handed on %v from %v", s, ids, in)
		}
		in = in[:0:0]
		for _, o := range out {
			in = append(in, o.id)
		}
	}
}

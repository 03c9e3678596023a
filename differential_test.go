package trimeter_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/internal/testclock"
	"github.com/trimeter-go/trimeter/throttle"
)

// A differential test of the run's internal paths. The scheduler takes
// different paths for the same call depending on its options: with
// MaxAtOnce(1) the one worker ranges over the input itself and hands small
// results over through a channel (handoff.go), or big ones through the
// outbox; above 1 with no rate or meter a feeder queues the inputs for the
// workers (feeder.go); with a rate, a meter, PerKey or no MaxAtOnce the
// workers take turns to start tasks (starter.go). None of that may show:
// random scenarios run through every path of their group, and each path
// must keep the promises of the docs, and agree with the others wherever
// the docs fix the outcome.
//
// fn and the inputs are deterministic and quick, so a run's outcome
// depends on scheduling only where the docs let it. There only what they
// promise is checked: with more than one call at once, which results
// reach the loop before a failure, a panic or the parent's end (each must
// be one an input comes to, yielded once, and a prefix of the input order
// where an order is promised), and which of several inputs that would end
// the run ends it (any of them may); after a panic or the parent's end,
// which finished results are dropped; RunAny's answer among several
// successes. How many inputs are pulled or calls made, what meters and
// monitors count, and the cause fn's context reports are not compared.

// dKind is what one input comes to.
type dKind uint8

const (
	dOK        dKind = iota // fn returns a value
	dFail                   // fn returns an error of its own
	dOwnCancel              // fn returns an error that wraps context.Canceled, its context live
	dPanic                  // fn panics
	dCancel                 // fn cancels the run's parent context and returns its error
	dUpstream               // Then, ThenOutcomes: the input comes as an upstream error
	dStageEnd               // ThenOutcomes: the stage before yields the end of its run here
)

// dEntry is the entry point a scenario calls.
type dEntry uint8

const (
	dAMap dEntry = iota
	dThen
	dOutcomes
	dThenOutcomes
	dRunAll
	dRunAny
	dRunOnEach
)

var dEntryNames = [...]string{"AMap", "Then", "Outcomes", "ThenOutcomes", "RunAll", "RunAny", "RunOnEach"}

// dBody is what the loop body does once it has received an item.
type dBody uint8

const (
	dGoOn dBody = iota
	dBreak
	dBodyPanic
)

// dScenario is one call: its inputs, what each comes to, and its options.
type dScenario struct {
	entry      dEntry
	kinds      []dKind
	seqPanicAt int   // the input sequence panics instead of yielding this input; -1 for never
	body       dBody // what the loop body does on receiving item bodyAt (counting from 0)
	bodyAt     int
	keepGoing  bool
	ordered    bool
	serial     bool // MaxAtOnce(1); else atOnce
	atOnce     int
	buffer     int
}

func (sc *dScenario) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s kinds=%v seqPanicAt=%d", dEntryNames[sc.entry], sc.kinds, sc.seqPanicAt)
	if sc.body != dGoOn {
		fmt.Fprintf(&b, " body=%v@%d", []string{"", "break", "panic"}[sc.body], sc.bodyAt)
	}
	fmt.Fprintf(&b, " keepGoing=%v ordered=%v serial=%v atOnce=%d buffer=%d", sc.keepGoing, sc.ordered, sc.serial, sc.atOnce, sc.buffer)
	return b.String()
}

// randomScenario draws a scenario. Most inputs succeed, so that most
// scenarios have none or one input that ends the run, where the docs fix
// the most.
func randomScenario(r *rand.Rand) *dScenario {
	sc := &dScenario{entry: dEntry(r.IntN(len(dEntryNames))), seqPanicAt: -1}
	n := r.IntN(13)
	for range n {
		sc.kinds = append(sc.kinds, sc.randomKind(r))
	}
	if r.IntN(6) == 0 {
		sc.seqPanicAt = r.IntN(n + 1)
	}
	if sc.streams() && r.IntN(3) == 0 {
		sc.body = dBody(1 + r.IntN(2))
		sc.bodyAt = r.IntN(n + 1)
	}
	sc.keepGoing = r.IntN(2) == 0
	sc.ordered = r.IntN(2) == 0
	sc.serial = r.IntN(5) < 2
	sc.atOnce = []int{2, 3, 4, 8}[r.IntN(4)]
	sc.buffer = []int{0, 0, 1, 2, 5}[r.IntN(5)]
	return sc
}

func (sc *dScenario) randomKind(r *rand.Rand) dKind {
	if r.IntN(10) < 7 {
		return dOK
	}
	kinds := []dKind{dFail, dFail, dOwnCancel, dPanic, dCancel}
	switch sc.entry {
	case dThen:
		kinds = append(kinds, dUpstream, dUpstream)
	case dThenOutcomes:
		kinds = append(kinds, dUpstream, dUpstream, dStageEnd)
	}
	return kinds[r.IntN(len(kinds))]
}

// streams says whether the entry yields to a loop body.
func (sc *dScenario) streams() bool { return sc.entry <= dThenOutcomes }

// keeps says whether a failed input leaves the run going.
func (sc *dScenario) keeps() bool {
	switch sc.entry {
	case dOutcomes, dThenOutcomes, dRunAny:
		return true
	}
	return sc.keepGoing
}

// inOrder says whether the items come in input order: serial runs finish
// their tasks in input order, RunAll places its results by index.
func (sc *dScenario) inOrder() bool {
	return sc.serial || sc.entry == dRunAll || (sc.ordered && sc.entry <= dThenOutcomes)
}

// limit is the number of inputs the sequence yields before it ends or
// panics.
func (sc *dScenario) limit() int {
	if sc.seqPanicAt >= 0 {
		return sc.seqPanicAt
	}
	return len(sc.kinds)
}

// The values and errors the scenarios' inputs come to. A value is offset
// so that a zero value yielded in its place is told apart from input 0's.
const dValueBase = 100

func dErr(k dKind, i int) error {
	switch k {
	case dFail:
		return fmt.Errorf("fail %d", i)
	case dOwnCancel:
		return fmt.Errorf("own %d: %w", i, context.Canceled)
	case dUpstream:
		return fmt.Errorf("upstream %d", i)
	case dStageEnd:
		return fmt.Errorf("stage %d", i)
	}
	return nil
}

const dSeqPanic = "sequence panic"

func dFnPanic(i int) string { return fmt.Sprintf("fn panic %d", i) }

// dBodyPanicValue is what the loop body panics with.
var dBodyPanicValue = &struct{ name string }{"body panic"}

// Tokens: how observations and expectations spell an item or an ending.
func valueToken(v int) string { return "v" + strconv.Itoa(v-dValueBase) }
func errToken(err error) string {
	return "!" + err.Error()
}

const (
	endBreak     = "break"
	endBodyPanic = "body panic"
	zeroToken    = "zero" // RunAll's place of a failed input under KeepGoing
)

func panicToken(v any) string { return "panic: " + fmt.Sprint(v) }

// dStopper is an input that ends the run when its turn comes, and how.
type dStopper struct {
	end  string
	soft bool // a failure under fail-fast: the results that finished before it still go out
}

// expectation is what the docs promise about a scenario's run.
type expectation struct {
	all      []string // every item the run may yield, in input order
	prefix   []string // the items before the first stopper, in input order
	stoppers []dStopper
	ends     []string // the endings allowed
}

// expect works out what the scenario's run may come to.
func (sc *dScenario) expect() *expectation {
	x := &expectation{}
	for i := range sc.limit() {
		item, stop := sc.outcomeOf(i)
		if stop != nil {
			x.stoppers = append(x.stoppers, *stop)
		} else {
			x.all = append(x.all, item)
			if len(x.stoppers) == 0 {
				x.prefix = append(x.prefix, item)
			}
		}
	}
	if sc.seqPanicAt >= 0 {
		x.stoppers = append(x.stoppers, dStopper{end: panicToken(dSeqPanic)})
	}
	if sc.serial && len(x.stoppers) > 1 {
		// One task at a time, in input order: the first stopper is the
		// last input that runs.
		x.stoppers = x.stoppers[:1]
	}
	switch sc.entry {
	case dRunAll, dRunOnEach:
		x.ends = sc.collectedEnds(x)
	case dRunAny:
		x.ends = sc.anyEnds(x)
	default:
		x.ends = sc.streamEnds(x)
	}
	return x
}

// outcomeOf says what input i comes to: an item, or the end of the run.
func (sc *dScenario) outcomeOf(i int) (item string, stop *dStopper) {
	k := sc.kinds[i]
	switch k {
	case dOK:
		if sc.entry == dRunAny {
			return "", &dStopper{end: valueToken(dValueBase + i)} // the answer
		}
		return valueToken(dValueBase + i), nil
	case dPanic:
		return "", &dStopper{end: panicToken(dFnPanic(i))}
	case dCancel:
		return "", &dStopper{end: errToken(context.Canceled)}
	case dStageEnd:
		return "", &dStopper{end: errToken(dErr(k, i))}
	}
	if !sc.keeps() {
		return "", &dStopper{end: errToken(dErr(k, i)), soft: true}
	}
	if sc.entry == dRunAll {
		return zeroToken, nil
	}
	return errToken(dErr(k, i)), nil
}

// streamEnds are the endings allowed to a run that yields to a loop body.
func (sc *dScenario) streamEnds(x *expectation) []string {
	action := map[dBody]string{dBreak: endBreak, dBodyPanic: endBodyPanic}[sc.body]
	reach := len(x.all)
	if sc.inOrder() {
		reach = len(x.prefix)
	}
	acts := sc.body != dGoOn && sc.bodyAt < reach
	switch {
	case len(x.stoppers) == 0 && acts:
		return []string{action}
	case len(x.stoppers) == 0:
		return []string{""}
	case sc.serial && x.stoppers[0].soft:
		// Every result before the failure finished before it, and goes
		// out before its error.
		if acts {
			return []string{action}
		}
		return []string{x.stoppers[0].end}
	}
	ends := stopperEnds(x.stoppers)
	if acts {
		ends = append(ends, action)
	}
	return ends
}

// collectedEnds are the endings allowed to RunAll and RunOnEach: the
// joined failures under KeepGoing, or a stopper's end.
func (sc *dScenario) collectedEnds(x *expectation) []string {
	if len(x.stoppers) > 0 {
		return stopperEnds(x.stoppers)
	}
	var errs []error
	for i, k := range sc.kinds {
		if err := dErr(k, i); err != nil {
			errs = append(errs, &trimeter.ItemError{Index: i, Err: err})
		}
	}
	if len(errs) == 0 {
		return []string{""}
	}
	return []string{errToken(errors.Join(errs...))}
}

// anyEnds are the answers RunAny may give: a success or a stopper's end;
// if there is neither, every failure joined, or ErrNoTasks.
func (sc *dScenario) anyEnds(x *expectation) []string {
	if len(x.stoppers) > 0 {
		return stopperEnds(x.stoppers)
	}
	if len(x.all) == 0 {
		return []string{errToken(trimeter.ErrNoTasks)}
	}
	var errs []error
	for i, k := range sc.kinds {
		errs = append(errs, &trimeter.ItemError{Index: i, Err: dErr(k, i)})
	}
	return []string{errToken(errors.Join(errs...))}
}

func stopperEnds(stoppers []dStopper) []string {
	var ends []string
	for _, s := range stoppers {
		if !slices.Contains(ends, s.end) {
			ends = append(ends, s.end)
		}
	}
	return ends
}

// observation is what a run came to, as the caller saw it.
type observation struct {
	items  []string // every item yielded, in order
	end    string   // how the run ended: "" (all yielded), a break, a panic, or the error that ended it
	faults []string // promises seen broken on the way
}

func (o *observation) fault(format string, args ...any) {
	o.faults = append(o.faults, fmt.Sprintf(format, args...))
}

// take records a pair the loop body received, and acts as the body does.
// It returns false to break.
func (o *observation) take(sc *dScenario, tok string, end bool) bool {
	if o.end != "" {
		o.fault("%s yielded after the end %q", tok, o.end)
		return false
	}
	if end {
		o.end = tok
		return true
	}
	o.items = append(o.items, tok)
	if sc.body == dGoOn || len(o.items) != sc.bodyAt+1 {
		return true
	}
	if sc.body == dBreak {
		o.end = endBreak
		return false
	}
	panic(dBodyPanicValue)
}

// check reports the promises o breaks: its ending must be one the docs
// allow, and its items ones the inputs come to, each once, in input order
// where the call promises it, all of them when nothing ended the run
// early, and as many as the body took when it broke off.
func (x *expectation) check(sc *dScenario, o *observation) []string {
	faults := slices.Clone(o.faults)
	if !slices.Contains(x.ends, o.end) {
		faults = append(faults, fmt.Sprintf("ended with %q, not one of %q", o.end, x.ends))
	}
	switch sc.entry {
	case dRunAll:
		if want := x.runAllItems(); !slices.Equal(o.items, want) {
			faults = append(faults, fmt.Sprintf("results %q, want %q", o.items, want))
		}
		return faults
	case dRunAny, dRunOnEach: // no items: the ending is all
		return faults
	}
	seen := map[string]bool{}
	for _, it := range o.items {
		if seen[it] || !slices.Contains(x.all, it) {
			faults = append(faults, fmt.Sprintf("item %q yielded twice, or not one of %q", it, x.all))
		}
		seen[it] = true
	}
	if sc.inOrder() && !isPrefix(o.items, x.prefix) {
		faults = append(faults, fmt.Sprintf("items %q are not a prefix of %q", o.items, x.prefix))
	}
	if want, fixed := x.fixedItems(sc, o.end); fixed && !sameItems(sc, o.items, want) {
		faults = append(faults, fmt.Sprintf("items %q, want %q", o.items, want))
	}
	return faults
}

// fixedItems returns the items that the docs fix for a run that ended
// with end, if they fix them; a body that broke off fixes only their
// number unless they come in order.
func (x *expectation) fixedItems(sc *dScenario, end string) (items []string, fixed bool) {
	switch {
	case end == "":
		return x.all, true
	case (end == endBreak || end == endBodyPanic) && sc.inOrder() && sc.bodyAt < len(x.prefix):
		return x.prefix[:sc.bodyAt+1], true
	case sc.serial && len(x.stoppers) > 0 && x.stoppers[0].soft && end == x.stoppers[0].end:
		return x.prefix, true
	}
	return nil, false
}

// runAllItems returns RunAll's results: all of them, or none when an
// input ends the run early.
func (x *expectation) runAllItems() []string {
	if len(x.stoppers) > 0 {
		return nil
	}
	return x.all
}

// sameItems says whether a and b hold the same items: in the same order
// when the call promises an order.
func sameItems(sc *dScenario, a, b []string) bool {
	if !sc.inOrder() {
		a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	}
	return slices.Equal(a, b)
}

func isPrefix(a, of []string) bool { return len(a) <= len(of) && slices.Equal(a, of[:len(a)]) }

// agree reports how two paths' observations of one scenario differ where
// the docs fix the outcome: the ending when only one is allowed, and the
// items when the ending fixes them.
func (x *expectation) agree(sc *dScenario, a, b *observation) []string {
	var faults []string
	if len(x.ends) == 1 && a.end != b.end {
		faults = append(faults, fmt.Sprintf("ended with %q and %q", a.end, b.end))
	}
	if a.end != b.end {
		return faults
	}
	_, fixed := x.fixedItems(sc, a.end)
	if (fixed || sc.entry == dRunAll) && !sameItems(sc, a.items, b.items) {
		faults = append(faults, fmt.Sprintf("items %q and %q", a.items, b.items))
	}
	return faults
}

// dPath is one way of running a scenario: the options that route it.
type dPath struct {
	name      string
	route     string // the path the options take (RouteOf)
	big       bool   // results too big for the handoff channel: they go through the outbox
	perKey    bool   // PerKey with one key and no limits: the starter's path, even at MaxAtOnce(1)
	meter     bool   // WithMeter of a meter that never limits: the starter's path
	rate      bool   // MaxPerSecond that never runs dry on a fake clock: the starter's path
	unbounded bool   // no MaxAtOnce: the feeder's path, its queue the bound
}

// serialPaths run a scenario at MaxAtOnce(1): the handoff channel, the
// outbox, and the starter's path with one slot.
var serialPaths = []dPath{
	{name: "handoff", route: "handoff"},
	{name: "outbox", route: "serial", big: true},
	{name: "starter", route: "starter", perKey: true},
}

// concurrentPaths run a scenario at MaxAtOnce above 1: the feeder, and
// the starter's path, by a meter or a rate; and with no MaxAtOnce at all,
// the feeder again, whose queue is then the only bound.
var concurrentPaths = []dPath{
	{name: "fed", route: "fed"},
	{name: "meter", route: "starter", meter: true},
	{name: "rate", route: "starter", rate: true},
	{name: "unbounded", route: "fed", unbounded: true},
}

func (sc *dScenario) paths() []dPath {
	if !sc.serial {
		return concurrentPaths
	}
	if sc.entry == dRunOnEach { // no consumer: no handoff, and no result to be big
		return []dPath{{name: "serial", route: "serial"}, serialPaths[2]}
	}
	return serialPaths
}

func (p dPath) options(sc *dScenario) []trimeter.Option {
	opts := []trimeter.Option{trimeter.BufferSize(sc.buffer)}
	switch {
	case p.unbounded:
	case sc.serial:
		opts = append(opts, trimeter.MaxAtOnce(1))
	default:
		opts = append(opts, trimeter.MaxAtOnce(sc.atOnce))
	}
	if sc.keepGoing {
		opts = append(opts, trimeter.KeepGoing())
	}
	if sc.ordered {
		opts = append(opts, trimeter.Ordered())
	}
	if p.meter {
		opts = append(opts, trimeter.WithMeter(throttle.NewConcurrency(1<<20)))
	}
	if p.rate {
		opts = append(opts, trimeter.MaxPerSecond(1e9), trimeter.MaxBurst(1<<30), trimeter.WithClock(testclock.New()))
	}
	return opts
}

// underOneKey is PerKey with every input under one key and no limit for it.
func underOneKey[T any]() trimeter.Option { return trimeter.PerKey(func(T) int { return 0 }) }

// bigResult is a result too big for the handoff channel's places.
type bigResult struct {
	v   int
	pad [4200]byte
}

// resultType converts the scenarios' int results to the type a path uses.
type resultType[R any] struct {
	wrap   func(int) R
	unwrap func(R) int
}

var (
	smallResults = resultType[int]{func(v int) int { return v }, func(v int) int { return v }}
	bigResults   = resultType[bigResult]{func(v int) bigResult { return bigResult{v: v} }, func(r bigResult) int { return r.v }}
)

// observeWithin runs sc on path p, and fails the test if the run has not
// returned within patience: a path that loses a result can leave the
// consumer waiting for it for ever, under Ordered.
func observeWithin(t *testing.T, n int, sc *dScenario, p dPath) *observation {
	t.Helper()
	done := make(chan *observation, 1)
	go func() { done <- observe(sc, p) }()
	watchdog := time.NewTimer(patience)
	defer watchdog.Stop()
	select {
	case o := <-done:
		return o
	case <-watchdog.C:
		t.Fatalf("scenario %d: %v\n%s: the run has not returned after %v", n, sc, p.name, patience)
		return nil
	}
}

// observe runs sc on path p.
func observe(sc *dScenario, p dPath) *observation {
	if p.big {
		return observeAs(sc, p, bigResults)
	}
	return observeAs(sc, p, smallResults)
}

// observeAs runs sc on path p with results of type R, and records what
// the caller sees.
func observeAs[R any](sc *dScenario, p dPath, rt resultType[R]) (o *observation) {
	o = &observation{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			o.end = o.panicked(r)
		}
	}()
	fn := func(ctx context.Context, i int) (R, error) {
		var zero R
		switch k := sc.kinds[i]; k {
		case dOK:
			return rt.wrap(dValueBase + i), nil
		case dPanic:
			panic(dFnPanic(i))
		case dCancel:
			cancel()
			return zero, ctx.Err()
		default:
			return zero, dErr(k, i)
		}
	}
	opts := p.options(sc)
	if route := routeOf[R](sc, p, opts); route != p.route {
		o.fault("the options take the %s path, not the %s path", route, p.route)
	}
	switch sc.entry {
	case dAMap, dThen:
		observeStream(ctx, o, sc, p, rt, fn, opts)
	case dOutcomes, dThenOutcomes:
		observeOutcomes(ctx, o, sc, p, rt, fn, opts)
	default:
		observeCollected(ctx, o, sc, p, rt, fn, opts)
	}
	return o
}

// panicked turns a panic that reached the caller into an ending.
func (o *observation) panicked(r any) string {
	if r == dBodyPanicValue {
		return endBodyPanic
	}
	pe, ok := r.(*trimeter.PanicError)
	if !ok {
		o.fault("panicked with %T %v, not a *PanicError", r, r)
		return panicToken(r)
	}
	return panicToken(pe.Value)
}

// sequence is the scenario's input, each input with its upstream error:
// input i is i.
func (sc *dScenario) sequence() iter.Seq2[int, error] {
	return func(yield func(int, error) bool) {
		for i, k := range sc.kinds {
			if i == sc.seqPanicAt {
				panic(dSeqPanic)
			}
			var err error
			if k == dUpstream || k == dStageEnd {
				err = dErr(k, i)
			}
			if !yield(i, err) {
				return
			}
		}
		if sc.seqPanicAt == len(sc.kinds) {
			panic(dSeqPanic)
		}
	}
}

func (sc *dScenario) values() iter.Seq[int] {
	return func(yield func(int) bool) {
		for v := range sc.sequence() {
			if !yield(v) {
				return
			}
		}
	}
}

// outcomes is the scenario's input as a stage of outcomes yields it: an
// upstream error as a failed outcome of its input, the end of a stage's
// run beside Index -1.
func (sc *dScenario) outcomes() iter.Seq2[trimeter.Input[int], trimeter.Outcome[int]] {
	return func(yield func(trimeter.Input[int], trimeter.Outcome[int]) bool) {
		for i, err := range sc.sequence() {
			in := trimeter.Input[int]{Index: i, Value: i}
			if sc.kinds[i] == dStageEnd {
				in = trimeter.Input[int]{Index: -1}
			}
			if !yield(in, trimeter.Outcome[int]{Value: i, Err: err}) {
				return
			}
		}
	}
}

// itemError says whether err is the failure of one of the inputs, which
// the run yields as an item when it keeps going.
func (sc *dScenario) itemError(err error) bool {
	if !sc.keeps() {
		return false
	}
	for i, k := range sc.kinds {
		if want := dErr(k, i); want != nil && k != dStageEnd && err.Error() == want.Error() {
			return true
		}
	}
	return false
}

// endError records err as the error that ended the run, checking that
// errors.Is sees the context's error in it when it reads as one.
func (o *observation) endError(err error) string {
	if strings.Contains(err.Error(), context.Canceled.Error()) && !errors.Is(err, context.Canceled) {
		o.fault("errors.Is(%v, context.Canceled) is false", err)
	}
	return errToken(err)
}

// observeStream runs AMap or Then: an error is an item when it is the
// failure of an input that the run keeps going past, and else the run's
// end.
func observeStream[R any](ctx context.Context, o *observation, sc *dScenario, p dPath, rt resultType[R], fn func(context.Context, int) (R, error), opts []trimeter.Option) {
	if p.perKey {
		opts = append(opts, underOneKey[int]())
	}
	var results iter.Seq2[R, error]
	if sc.entry == dAMap {
		results = trimeter.AMap(ctx, sc.values(), fn, opts...)
	} else {
		results = trimeter.Then(ctx, sc.sequence(), fn, opts...)
	}
	for v, err := range results {
		tok := valueToken(rt.unwrap(v))
		end := false
		if err != nil {
			end = !sc.itemError(err)
			tok = o.endError(err)
		}
		if !o.take(sc, tok, end) {
			break
		}
	}
}

// observeOutcomes runs Outcomes or ThenOutcomes, checking that each
// outcome sits beside its own input and that a failed one holds the zero
// value.
func observeOutcomes[R any](ctx context.Context, o *observation, sc *dScenario, p dPath, rt resultType[R], fn func(context.Context, int) (R, error), opts []trimeter.Option) {
	var results iter.Seq2[trimeter.Input[int], trimeter.Outcome[R]]
	if p.perKey {
		opts = append(opts, underOneKey[int]())
	}
	if sc.entry == dOutcomes {
		results = trimeter.Outcomes(ctx, sc.values(), fn, opts...)
	} else {
		results = trimeter.ThenOutcomes(ctx, sc.outcomes(), fn, opts...)
	}
	for in, out := range results {
		if in.Index < 0 {
			if !o.take(sc, o.endError(out.Err), true) {
				break
			}
			continue
		}
		tok := valueToken(rt.unwrap(out.Value))
		if out.Err != nil {
			tok = errToken(out.Err)
			if rt.unwrap(out.Value) != 0 {
				o.fault("the failed outcome %v holds a value", out.Err)
			}
		}
		if want := sc.inputToken(in.Index); in.Value != in.Index || tok != want {
			o.fault("%q beside input %+v, whose outcome is %q", tok, in, want)
		}
		if !o.take(sc, tok, false) {
			break
		}
	}
}

// inputToken is the item input i comes to when it is one.
func (sc *dScenario) inputToken(i int) string {
	if i < 0 || i >= len(sc.kinds) {
		return "no such input"
	}
	if err := dErr(sc.kinds[i], i); err != nil {
		return errToken(err)
	}
	return valueToken(dValueBase + i)
}

// observeCollected runs RunAll, RunAny or RunOnEach, whose inputs are the
// functions that call fn on each input.
func observeCollected[R any](ctx context.Context, o *observation, sc *dScenario, p dPath, rt resultType[R], fn func(context.Context, int) (R, error), opts []trimeter.Option) {
	type call = func(context.Context) (R, error)
	fns := func(yield func(call) bool) {
		for i := range sc.values() {
			if !yield(func(ctx context.Context) (R, error) { return fn(ctx, i) }) {
				return
			}
		}
	}
	if p.perKey && sc.entry != dRunOnEach {
		opts = append(opts, underOneKey[call]())
	} else if p.perKey {
		opts = append(opts, underOneKey[int]())
	}
	var err error
	switch sc.entry {
	case dRunAll:
		var results []R
		results, err = trimeter.RunAll(ctx, fns, opts...)
		for _, v := range results {
			tok := valueToken(rt.unwrap(v))
			if rt.unwrap(v) == 0 {
				tok = zeroToken
			}
			o.items = append(o.items, tok)
		}
	case dRunAny:
		var v R
		if v, err = trimeter.RunAny(ctx, fns, opts...); err == nil {
			o.end = valueToken(rt.unwrap(v))
		}
	case dRunOnEach:
		err = trimeter.RunOnEach(ctx, sc.values(), func(ctx context.Context, i int) error {
			_, err := fn(ctx, i)
			return err
		}, opts...)
	}
	if err != nil {
		o.end = o.endError(err)
	}
}

// TestEveryPathKeepsTheSamePromises runs random scenarios through every
// path of their group: each path must keep the docs' promises, and any
// two must agree wherever the docs fix the outcome. The scenarios come
// from a fixed seed; a failure names the scenario's number and shape.
func TestEveryPathKeepsTheSamePromises(t *testing.T) {
	scenarios := 1500
	if testing.Short() {
		scenarios = 300
	}
	r := rand.New(rand.NewPCG(28, 3))
	for n := range scenarios {
		sc := randomScenario(r)
		if !checkScenario(t, n, sc) {
			return // one scenario's report is enough to go on with
		}
	}
}

// checkScenario runs sc on each of its paths, and reports each promise a
// path breaks and each difference between two paths that the docs rule
// out.
func checkScenario(t *testing.T, n int, sc *dScenario) bool {
	t.Helper()
	x := sc.expect()
	paths := sc.paths()
	obs := make([]*observation, len(paths))
	var faults []string
	for i, p := range paths {
		obs[i] = observeWithin(t, n, sc, p)
		for _, f := range x.check(sc, obs[i]) {
			faults = append(faults, p.name+": "+f)
		}
		if i > 0 {
			for _, f := range x.agree(sc, obs[0], obs[i]) {
				faults = append(faults, paths[0].name+" and "+p.name+": "+f)
			}
		}
	}
	if len(faults) == 0 {
		return true
	}
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %d: %v\nallowed ends %q, items %q\n", n, sc, x.ends, x.all)
	for i, p := range paths {
		fmt.Fprintf(&b, "  %s: items %q, end %q\n", p.name, obs[i].items, obs[i].end)
	}
	t.Error(b.String() + strings.Join(faults, "\n"))
	return false
}

// routeOf says which path sc's call takes on p with opts (RouteOf). The
// tasks of ThenOutcomes, which carry their input beside the value, are
// taken for Input values, which are as big.
func routeOf[R any](sc *dScenario, p dPath, opts []trimeter.Option) string {
	switch sc.entry {
	case dRunOnEach:
		return routeWith[int, struct{}](false, p, opts)
	case dRunAll, dRunAny:
		return routeWith[func(context.Context) (R, error), R](true, p, opts)
	case dThenOutcomes:
		return routeWith[trimeter.Input[int], R](true, p, opts)
	}
	return routeWith[int, R](true, p, opts)
}

func routeWith[T, R any](consumer bool, p dPath, opts []trimeter.Option) string {
	if p.perKey {
		opts = append(opts, underOneKey[T]())
	}
	return trimeter.RouteOf[T, R](consumer, opts...)
}

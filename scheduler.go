package trimeter

import (
	"context"
	"errors"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/trimeter-go/trimeter/internal/changes"
	"github.com/trimeter-go/trimeter/internal/ownrate"
	"github.com/trimeter-go/trimeter/internal/timing"
	"github.com/trimeter-go/trimeter/throttle"
)

// The scheduler behind every entry point.
//
// A run owns a small pool of workers. One worker at a time is the starter:
// having the turn (takeTurn), it waits for a free slot, picks the next
// input that may start (pulling it from the source, or taking one that
// waited aside for its key), admits it through every meter, and then runs
// it itself while the next worker takes over as starter. So inputs are
// pulled only when a task can start, and rate tokens are taken at the
// moment their task starts. The pool grows, up to MaxAtOnce, only when the
// starter admits a task and no other worker is free to start the next one.
// Without MaxAtOnce it shrinks too: a worker that finds nothing to do while
// enough others wait for work already ends (keptIdle).
//
// Two special cases take shorter paths with the same guarantees: with
// MaxAtOnce(1) and no PerKey, the one worker ranges over the input itself
// (serial.go), and hands its results to the consumer through a channel
// (handoff.go); with MaxAtOnce above 1, or none, and no meter to pass, a
// feeder ranges over the input and queues each input, on a slot taken
// before it was pulled, for workers that do nothing but run tasks
// (feeder.go).
// Under a rate alone, the turn is handed on by the clock when the bucket
// runs dry, rather than by waking a worker that would only wait for the
// next token (pacing.go).
//
// A finished task's result goes to the consumer's outbox, where it keeps
// its slot until the consumer takes it (AMap and friends; the serial
// worker's go through the handoff channel instead), or is dropped at once
// with its slot (RunOnEach). The consumer is the caller's goroutine:
// results are only ever yielded from there.
//
// Panics: a panic in fn, in the key function or in the input sequence is
// recovered where it happens, with its stack, and stops the run; the
// caller's goroutine re-panics with it once every worker has returned. A
// worker goroutine never lets a panic through (guarded catches what the
// nearer recovers do not, a shared meter's), so neither a task nor a meter
// can crash the process.

// sinkMode says where finished results go.
type sinkMode uint8

const (
	toConsumer sinkMode = iota // wait in the outbox, holding their slots
	discard                    // no consumer: free the slot at once
)

type task[T any] struct {
	index int
	value T
	err   error // an upstream error: delivered without calling fn
	key   *keyState
}

type result[T, R any] struct {
	index int
	in    T
	val   R
	err   error
	key   *keyState
}

type engine[T, R any] struct {
	parent   context.Context
	ctx      context.Context // given to fn; cancelled when the run stops, or by the parent's end
	cancel   context.CancelCauseFunc
	live     context.Context // ctx's child, for the run's own waits: ended as soon as the run stops
	endLive  context.CancelFunc
	fn       func(context.Context, T) (R, error)
	keyOf    func(T) any // nil without PerKey
	cfg      *config
	clock    clockwork.Clock
	jumps    bool // clock is not the real one: it may move while a timer is set
	mode     sinkMode
	mon      *throttle.Monitor // nil unless Watch
	meters   []throttle.Meter  // the call's shared meters (WithMeter), by class (sortMeters)
	blocking int               // how many of meters are not a throttle.Trier (see meterAt)
	exact    int               // how many of meters, after those, are of package throttle
	rate     *throttle.Rate    // the call's MaxPerSecond, or nil
	limit    int               // MaxAtOnce, or 0 for none
	window   int               // MaxAtOnce + BufferSize, or 0 for none

	src     *source[T]
	in      inputs[T] // when one goroutine ranges over them (serve, feed)
	workers int       // started so far; changed by the starter (under mu when fed)
	retired int       // of those, ended before the run for want of work (keptIdle), under mu
	hire    bool      // the task just chosen leaves no worker free
	wg      sync.WaitGroup
	fed     bool // a feeder queues the inputs for the workers (feeder.go)

	mu          sync.Mutex
	starting    bool            // a worker has the turn to start tasks (takeTurn)
	turnWaits   int             // workers waiting on turn, or for kick or turnTimer
	turnCalled  bool            // a worker woken by turn.Signal has not looked at the turn yet (callTurnLocked)
	pulling     bool            // a worker pulls with the turn lent (pullLocked)
	lendTimer   clockwork.Timer // while the turn is lent, marks lanesDue at lendAt
	lendAt      time.Time       // when lendTimer is set to fire, or zero
	pacing      bool            // the turn is handed on by the rate's clock (pacing.go)
	turnTimed   bool            // when pacing, turnTimer is set to hand the turn on
	turnTimer   clockwork.Timer // when pacing; made the first time it is set
	kick        chan struct{}   // when pacing, wakes a worker waiting for the turn
	noTimer     chan struct{}   // when pacing, closed once turnTimer is made
	turn        sync.Cond
	room        sync.Cond   // the starter (or the feeder) waits here for a slot or a key
	roomWaits   int         // goroutines waiting on room
	open        int         // tasks started and not yet delivered
	running     int         // tasks started and not yet finished
	pulledAll   bool        // the source has ended
	stopped     bool        // no task starts any more
	draining    bool        // a task's error, or RunAny's answer, stopped the run: finished results still go out
	halted      atomic.Bool // stopped, readable without mu
	err         error       // why the run failed, under fail-fast
	errs        []error     // every failure, RunOnEach under KeepGoing
	panicked    *PanicError
	pausedUntil time.Time // the call's push-back pause
	wake        clockwork.Timer
	timerFuncs  timing.Funcs // sets wake and lendTimer, whose calls shutdown waits for
	lanes       []*lane[T]   // pulled inputs waiting for their keys
	parked      int          // how many
	lanesDue    bool         // something changed that may let one start
	lanesAt     time.Time    // else, when one may start by the clock
	keys        map[any]*keyState
	sweepAt     int
	out         outbox[result[T, R]]
	handoff     chan *result[T, R] // the serial worker's results, when it hands them over directly (handoff.go)
	handed      []result[T, R]     // the places of the results handed over, taken in turn
	handedAt    int                // the place of the next result handed over
	ending      bool               // shutdown has begun
	tasks       queue[queued[T]]   // inputs the feeder queued, in input order
	reserved    bool               // the feeder holds a slot for its next input
	idle        int                // workers sleeping on taskReady, not yet woken
	awake       int                // workers neither running a task nor idle
	taskReady   sync.Cond          // idle workers wait here for a queued input
	waiting     bool               // the consumer waits on ready
	ready       chan struct{}      // wakes the consumer
	stopParent  func() bool
	stopWatch   func()                // ends the watch for limit changes, under PerKey with meters
	parentDone  chan struct{}         // closed when the parent's AfterFunc has run
	parentEnd   <-chan struct{}       // the parent's Done: nil when it cannot end
	failing     atomic.Pointer[error] // a task's error under fail-fast, before mu records it
	failedFirst atomic.Bool           // failSoon cancelled fn's context with failing before it saw the parent's end

	limitsGen    atomic.Uint64  // how many times a meter of package throttle changed a limit (limitsChanged)
	limitsWaking atomic.Bool    // a goroutine waits for mu to act on limitsGen
	wakersMu     sync.Mutex     // guards wakersEnded and wakers' Add; held around no other lock
	wakersEnded  bool           // the run ends: limitsChanged starts no goroutine
	wakers       sync.WaitGroup // the goroutines limitsChanged started
}

// newEngine checks the options and prepares a run; nothing is pulled or
// started yet. The error wraps ErrBadOption (or a meter's own error).
func newEngine[T, R any](parent context.Context, fn func(context.Context, T) (R, error), keyOf func(T) any, cfg *config, mode sinkMode) (*engine[T, R], error) {
	if parent == nil {
		return nil, badOption("ctx is nil")
	}
	if fn == nil {
		return nil, badOption("fn is nil")
	}
	e := &engine[T, R]{
		parent: parent, fn: fn, keyOf: keyOf, cfg: cfg, clock: cfg.clock, mode: mode,
		mon: cfg.monitor, limit: cfg.maxAtOnce, sweepAt: minSweep,
		ready: make(chan struct{}, 1),
		jumps: !isRealClock(cfg.clock),
	}
	if e.limit > 0 {
		e.window = e.limit + cfg.buffer
		if e.window < e.limit { // the sum overflowed: no bound but the limit
			e.window = math.MaxInt
		}
	}
	e.room.L = &e.mu
	e.taskReady.L = &e.mu
	e.turn.L = &e.mu
	e.out.ordered = cfg.ordered
	if err := checkMeters(cfg.meters, ""); err != nil { // in the order given: the first bad one is reported
		return nil, err
	}
	e.meters, e.blocking, e.exact = sortMeters(cfg.meters)
	if err := cfg.limits.checkReplaced(""); err != nil {
		return nil, err
	}
	var err error
	if e.rate, err = cfg.limits.newRate(cfg.clock, ""); err != nil {
		return nil, err
	}
	if keyOf != nil {
		for _, pk := range cfg.perKeys { // the replaced ones too, as resolveKey
			if err := checkMeters(pk.meters, "PerKey: "); err != nil {
				return nil, err
			}
			if err := pk.checkReplaced("PerKey: "); err != nil {
				return nil, err
			}
			if _, err := pk.newRate(cfg.clock, "PerKey: "); err != nil {
				return nil, err
			}
		}
		e.keys = make(map[any]*keyState)
	}
	e.fed = e.feeds()
	if e.handsOver() {
		e.makeHandoff(e.window - e.limit)
	}
	if e.pacing = e.paces(); e.pacing {
		e.kick = make(chan struct{}, 1)
		e.noTimer = make(chan struct{})
	}
	return e, nil
}

// defaultBurstSpan sizes the default bucket of MaxPerSecond on the real
// clock: it holds the tokens that accrue in this long, and at least one.
// Real timers wake up to about 1.5 ms late; a bucket that covers that keeps
// a waiter that wakes late from losing tokens, without spinning to wake on
// time. Other clocks (a fake one in tests) wake on time: their default
// bucket is 1.
const defaultBurstSpan = 5 * time.Millisecond

// From marginFrom starts per second up, the default bucket grants from all
// but the tokens of startMargin (at least one), which it holds back: a
// task begins some microseconds after its token is granted (more when its
// thread is descheduled), and without the margin such delays could bunch
// the starts closer together than their grants, beyond burst + rate·t.
// Below marginFrom the bucket is too small to give a token up without
// waking late timers into lost throughput.
const (
	marginFrom  = 1000
	startMargin = 250 * time.Microsecond
)

// fastestRate is the fastest rate a throttle.Rate keeps: it counts faster
// ones as this. The default bucket is sized from the rate it keeps.
const fastestRate = 1e9

var realClockType = reflect.TypeOf(clockwork.NewRealClock())

// isRealClock says whether clock reads the real time: its timers wake late
// but it never jumps, where a fake clock wakes on time and moves in steps.
func isRealClock(clock clockwork.Clock) bool { return reflect.TypeOf(clock) == realClockType }

// burstSize returns the burst of the rate limit on clock: the b of the
// bound b + rate·t.
func (l limits) burstSize(clock clockwork.Clock) int {
	if l.burst > 0 {
		return l.burst
	}
	if !isRealClock(clock) {
		return 1
	}
	return max(1, l.tokensIn(defaultBurstSpan))
}

// bucketSize returns how many tokens the bucket of the rate limit on clock
// holds: the burst, less the default's margin.
func (l limits) bucketSize(clock clockwork.Clock) int {
	burst := l.burstSize(clock)
	if l.burst > 0 || l.rate < marginFrom || !isRealClock(clock) {
		return burst
	}
	return burst - max(1, l.tokensIn(startMargin))
}

// tokensIn returns how many whole tokens of the rate limit accrue in d, at
// the rate a throttle.Rate keeps.
func (l limits) tokensIn(d time.Duration) int { return int(min(l.rate, fastestRate) * d.Seconds()) }

// newRate returns the token bucket of MaxPerSecond, or nil without it.
func (l limits) newRate(clock clockwork.Clock, where string) (*throttle.Rate, error) {
	if l.rate == 0 {
		return nil, nil
	}
	size := l.bucketSize(clock)
	r := throttle.NewRate(l.rate, size, throttle.WithClock(clock))
	ownrate.Mark(r) // no one else sees its permits or its Stats
	if err := r.Err(); err != nil {
		if l.burst == 0 {
			return nil, badOption("%sMaxPerSecond(%v): %v", where, l.rate, err)
		}
		return nil, badOption("%sMaxPerSecond(%v) with MaxBurst(%d): %v", where, l.rate, l.burst, err)
	}
	return r, nil
}

// checkReplaced checks the rates and bursts that a later MaxPerSecond or
// MaxBurst replaced, as newRate checks those in force: a rate alone, a
// burst with the rate in force. where says where they were given.
func (l limits) checkReplaced(where string) error {
	for _, rate := range l.replacedRates {
		if err := throttle.NewRate(rate, 1).Err(); err != nil {
			return badOption("%sMaxPerSecond(%v): %v", where, rate, err)
		}
	}
	if l.rate == 0 {
		return nil
	}
	for _, burst := range l.replacedBursts {
		if err := throttle.NewRate(l.rate, burst).Err(); err != nil {
			return badOption("%sMaxPerSecond(%v) with MaxBurst(%d): %v", where, l.rate, burst, err)
		}
	}
	return nil
}

// begin starts the run over in. The caller must call shutdown.
func (e *engine[T, R]) begin(in inputs[T]) {
	if e.mon != nil { // the call begins: its options were good
		e.mon.SetLimit(int64(e.limit)) // zero for none, over an earlier call's
	}
	e.ctx, e.cancel = context.WithCancelCause(e.parent)
	e.live, e.endLive = context.WithCancel(e.ctx)
	if e.serial() || e.fed {
		e.in = in
	} else {
		e.src = newSource(in.seq2())
	}
	e.parentEnd = e.parent.Done()
	e.parentDone = make(chan struct{})
	e.stopParent = context.AfterFunc(e.parent, func() {
		defer close(e.parentDone)
		e.mu.Lock()
		defer e.mu.Unlock()
		e.stopForParentLocked(e.parent.Err())
	})
	if err := e.parent.Err(); err != nil {
		e.mu.Lock()
		e.stopLocked(err)
		e.mu.Unlock()
	}
	if e.keys != nil && len(e.cfg.perKey().meters) > 0 {
		e.stopWatch = changes.Watch(e.limitsChanged)
	}
}

// launch starts the run's first goroutine: the feeder, or the first worker.
func (e *engine[T, R]) launch() {
	if e.fed {
		e.goRun(e.feed) // the feeder is not one of the workers
		return
	}
	e.spawn()
}

// keptIdle is how many idle workers a run without MaxAtOnce keeps at
// least: a worker that finds no work while that many others wait for some
// already, and as many as there are tasks running, ends instead of
// waiting too. (With MaxAtOnce the limit bounds the pool, and every worker
// stays to the end of the run.) So a spell of slow tasks that grew the
// pool to thousands of workers does not leave them all waiting until the
// run ends, and a load that comes and goes keeps about as many workers as
// it needs: when work comes back, the pool grows again as it waits. No
// run of no-op tasks comes near it (such a run has some ten goroutines).
// Measured with 20,000 tasks of 0 to 2 ms, about 45 at once: 1.83 to 2.03
// µs of CPU per task, against 1.73 to 1.80 when every worker stays, and
// 1.95 to 2.10 when a worker ends whenever keptIdle others wait (the pool
// then shrinks and grows again with every lull). It must be at least 1: a
// worker ends only while another waits, for the feeder's call or for a
// paced turn's timer, which would otherwise wake no one.
const keptIdle = 16

// retiresLocked says whether a worker that is about to wait for work ends
// instead (keptIdle), with waiting workers waiting that way already; it
// counts the worker retired if so. Workers that went to wait while many
// tasks ran may outnumber them once they end: the caller then wakes one of
// those (surplusLocked), which ends in turn, and so on.
func (e *engine[T, R]) retiresLocked(waiting int) bool {
	if e.limit != 0 || waiting < max(keptIdle, e.running) {
		return false
	}
	e.retired++
	return true
}

// surplusLocked says whether, with waiting workers waiting for work, one
// of them would end if it looked again (retiresLocked).
func (e *engine[T, R]) surplusLocked(waiting int) bool {
	return e.limit == 0 && waiting > max(keptIdle, e.running)
}

// spawn adds a worker; the caller is the starter (or is starting the run).
func (e *engine[T, R]) spawn() {
	e.workers++
	e.goRun(e.work)
}

// goRun runs f in a new goroutine of the run, one that shutdown waits for,
// guarded as guarded says.
func (e *engine[T, R]) goRun(f func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		growStack()
		e.guarded(f)
	}()
}

// stackRoom is how much stack growStack makes room for.
const stackRoom = 3 << 10

// growStack grows the calling goroutine's stack (a new one has 2 KiB, of
// which the runtime keeps some 900 bytes for itself) by stackRoom at once,
// while it is still shallow and its copy cheap. A task that blocks on its
// context runs a few hundred bytes of its own code under the worker's
// frames; woken by a break, the calls it makes on the way out (ctx.Err,
// say) would otherwise grow the stack then, a copy of every frame on it,
// and with 64 calls in flight that took a break from about 20 µs to
// 120 µs.
//
//go:noinline
func growStack() {
	var room [stackRoom]byte
	use(room[:])
}

//go:noinline
func use([]byte) {}

// guarded runs f, and records a panic that escapes it as the run's: the
// run stops, and the panic is raised again in the caller. fn's panics and
// the input's are recovered nearer, where they happen; this catches those
// of the code a worker calls besides, a WithMeter meter's above all, which
// would otherwise end the process, and a runtime.Goexit there, which would
// end the worker with its task never finished. Every function that locks
// mu unlocks it in a deferred call or calls no such code while it holds
// mu, so mu is free again by the time either gets here.
func (e *engine[T, R]) guarded(f func()) {
	returned := false
	defer func() {
		r := recover()
		if r == nil && !returned {
			r = ErrGoexit
		}
		if r != nil {
			e.recordPanic(asPanicError(r))
		}
	}()
	f()
	returned = true
}

// work starts and runs tasks until no task will start any more.
func (e *engine[T, R]) work() {
	switch {
	case e.fed:
		e.feed() // this goroutine feeds; the workers are others
		return
	case e.src == nil:
		e.serve()
		return
	}
	var ps []throttle.Permit
	for {
		t, ok := e.next(&ps)
		if !ok {
			return
		}
		e.run(t, &ps)
	}
}

// shutdown stops the run and returns once every worker has returned and
// the source's own cleanup has run.
func (e *engine[T, R]) shutdown() {
	e.mu.Lock()
	e.ending = true // the drain below takes what the worker hands on: no dropHandedLocked
	e.stopForParentLocked(e.parentErr())
	e.mu.Unlock()
	if e.handoff != nil {
		for range e.handoff {
			// Results the consumer will not take: the serial worker hands
			// them on, sees the run stopped, and closes the channel.
		}
	}
	e.wg.Wait()
	// Every worker has returned, and stopLocked stopped the timers that
	// call back into the run; a call that began just before its timer was
	// stopped may still be waiting for mu. The run returns after it.
	e.timerFuncs.Wait()
	e.mu.Lock()
	if e.mon != nil && e.parked > 0 {
		e.mon.Wait(-int64(e.parked)) // the inputs left aside wait no more
		e.parked = 0
	}
	if e.mon != nil {
		e.mon.EndPause(e.pausedUntil) // the call's pause holds nothing off any more
	}
	e.mu.Unlock()
	if e.stopWatch != nil {
		e.stopWatch()
		e.endWakers()
	}
	if !e.stopParent() {
		<-e.parentDone
	}
	e.cancelRun(errStopped)
	if e.src != nil {
		// A panic in the sequence's cleanup is the run's, as it is on the
		// paths that range over the sequence (rangeInputs): raised by end
		// unless a panic came first, which it does not replace.
		if p := e.src.close(); p != nil {
			e.recordPanic(asPanicError(p))
		}
	}
}

// errStopped is the cause of the run context once the run has ended for
// any reason but a failure or the parent's end.
var errStopped = errors.New("trimeter: run stopped")

// cancelRun ends the run's own waits at once (live), and cancels fn's
// context with cause, unless the parent has ended: then the context
// package cancels fn's context, a child of the parent's, with the
// parent's error and cause (a deadline's DeadlineExceeded, say), maybe a
// moment after the run saw the end, or even after the run returned (it
// cancels the contexts made from the parent one after another, some from
// a goroutine of its own), and a cancel here could come first, so that fn
// would see the run's cause instead. The parent counts as ended once its
// Done is closed, not when its Err says so: only then is the context
// package sure to cancel fn's context, and to let go of what it keeps for
// it (with a parent whose Err reports an end that Done does not, the
// cancel here does that).
func (e *engine[T, R]) cancelRun(cause error) {
	e.endLive() // first: a call that sees its context end finds the run's waits ended
	if !e.parentEnded() {
		e.cancel(cause)
	}
}

// parentEnded says whether the parent's Done is closed.
func (e *engine[T, R]) parentEnded() bool {
	select {
	case <-e.parentEnd: // nil when the parent cannot end
		return true
	default:
		return false
	}
}

// parentErr is the parent's error once its Done is closed, and nil
// before. Once the run has begun, the parent has ended for it from that
// moment, not from when its Err reports an end (a moment earlier, with
// some contexts, or for good, with a broken one): from then on the
// context package cancels fn's context with the parent's error and cause
// (cancelRun), so that the run's own error and the cause fn's context
// reports agree, but for a parent that ends at the very instant the run
// decides (between two readings of Done, or during failSoon's cancel).
func (e *engine[T, R]) parentErr() error {
	if e.parentEnded() {
		return e.parent.Err()
	}
	return nil
}

// causeLocked is the cause fn's context is cancelled with when the run
// stops: under fail-fast, the failure that stopped it, as errgroup's
// WithContext gives it; otherwise errStopped.
func (e *engine[T, R]) causeLocked() error {
	if p := e.failing.Load(); p != nil {
		return *p
	}
	return errStopped
}

// stopLocked makes the run start nothing more and cancels its tasks. A
// non-nil err is the run's failure, unless an earlier one is recorded.
func (e *engine[T, R]) stopLocked(err error) {
	if err != nil && e.err == nil && e.panicked == nil && !e.stopped {
		e.err = err
	}
	if e.stopped {
		return
	}
	e.stopped = true
	e.halted.Store(true)
	if e.handoff != nil && !e.draining && !e.ending {
		e.dropHandedLocked()
	}
	if e.cancel != nil {
		e.cancelRun(e.causeLocked())
	}
	if e.wake != nil {
		e.wake.Stop()
	}
	if e.turnTimer != nil {
		e.turnTimer.Stop()
	}
	if e.lendTimer != nil {
		e.lendTimer.Stop()
	}
	e.room.Broadcast()
	e.turn.Broadcast()
	e.kickLocked()
	e.wakeIdleLocked()
	e.wakeConsumerLocked()
}

// stoppedLocked says whether the run has stopped, stopping it first for
// the parent context's end, or for a task's failure (failSoon) that mu has
// not recorded yet. The parent's AfterFunc and the failed task's worker
// stop the run too, but they may take mu late: a cancel made in the loop
// body or in fn, or an error returned by fn, is seen here, before the next
// start or delivery.
func (e *engine[T, R]) stoppedLocked() bool {
	if !e.stopped && (e.parentEnd != nil || e.failing.Load() != nil) {
		e.stopIfEndedLocked()
	}
	return e.stopped
}

// stopIfEndedLocked is stoppedLocked's own slow path.
func (e *engine[T, R]) stopIfEndedLocked() {
	select {
	case <-e.parentEnd:
		e.stopForParentLocked(e.parent.Err())
	default:
		if p := e.failing.Load(); p != nil {
			e.failLocked(*p)
		}
	}
}

// stopping says, without mu, whether the run has stopped or is about to:
// for a failure failSoon signalled, or for the parent's end that mu has not
// recorded yet. A task admitted meanwhile, while a meter took its time,
// then does not start (admit).
func (e *engine[T, R]) stopping() bool {
	if e.halted.Load() || e.failing.Load() != nil {
		return true
	}
	return e.parentEnd != nil && e.parentEnded()
}

// failSoon makes a task's error stop the run at once, before the worker
// that has it takes mu: under fail-fast it cancels the calls in flight
// and keeps anything more from starting (stoppedLocked), while the worker
// makes its way to finishLocked. The first error signalled is the run's
// (failLocked), not that of a call it cancelled that took mu first.
func (e *engine[T, R]) failSoon(err error) {
	if err == errPanicked || e.cfg.keepGoing {
		return // a panic stopped the run already; KeepGoing goes on
	}
	if e.failing.CompareAndSwap(nil, &err) {
		e.endLive()
		if !e.parentEnded() { // as cancelRun, noting that the failure came first
			e.failedFirst.Store(true)
			e.cancel(err)
		}
	}
}

// stopForParentLocked stops the run for the parent's end, with perr, the
// parent's error (nil: the parent has not ended). A failure that failSoon
// signalled before it saw the parent's end, cancelling fn's context with
// it, came first, though its worker has not recorded it yet: it is the
// run's error, as it is the cause fn's context reports. (When the parent
// ends at the very instant failSoon looks, the context package's cancel
// can get to fn's context before failSoon's, and the two then differ: in
// 400,000 runs made to end at once, that came to 1 or 2 of them.)
func (e *engine[T, R]) stopForParentLocked(perr error) {
	if perr != nil && e.failedFirst.Load() {
		e.failLocked(*e.failing.Load())
		return
	}
	e.stopLocked(perr)
}

// failLocked records a task's failure under fail-fast. A failure that
// comes after the run stopped (the task saw our own cancel) is dropped;
// once the parent context has ended, its error is the run's, unless a
// failure was signalled before that (stopForParentLocked).
func (e *engine[T, R]) failLocked(err error) {
	if e.stopped {
		return
	}
	if perr := e.parentErr(); perr != nil && !e.failedFirst.Load() {
		err = perr
	} else {
		e.draining = true
		// The first failure signalled (failSoon) is the run's. One that
		// came another way (a meter's error before its task started) is
		// signalled now, before the cancel: a success a call returns after
		// it is then known to be late (attempt).
		e.failing.CompareAndSwap(nil, &err)
		err = *e.failing.Load()
	}
	e.stopLocked(err)
}

// panicLocked records the first panic and stops the run.
func (e *engine[T, R]) panicLocked(p *PanicError) {
	if e.panicked == nil {
		e.panicked = p
	}
	e.stopLocked(nil)
	e.wakeConsumerLocked() // it may wait for the calls to return (awaitFailure)
}

func (e *engine[T, R]) recordPanic(p *PanicError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.panicLocked(p)
}

func (e *engine[T, R]) wakeConsumerLocked() {
	if e.waiting {
		e.waiting = false
		select {
		case e.ready <- struct{}{}:
		default:
		}
	}
}

// finish hands a task's result on and frees what it held.
func (e *engine[T, R]) finish(t task[T], v R, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.finishLocked(t, v, err)
}

func (e *engine[T, R]) finishLocked(t task[T], v R, err error) {
	e.callEndedLocked()
	if e.endTaskLocked(t, err) {
		e.out.push(t.index, result[T, R]{index: t.index, in: t.value, val: v, err: err, key: t.key})
		e.wakeConsumerLocked()
	} else {
		e.releaseLocked(t.key)
	}
	e.signalRoomLocked()
}

// endTaskLocked records what t's ending with err means for the run (a
// failure, RunAny's answer, an error RunOnEach gathers under KeepGoing),
// and says whether its result goes to the consumer.
func (e *engine[T, R]) endTaskLocked(t task[T], err error) (delivered bool) {
	if err != nil && (!e.cfg.keepGoing || e.parentEnded()) {
		e.failLocked(err) // under KeepGoing, only the parent's end stops the run
	}
	if !e.deliversLocked(err) {
		if err != nil && e.cfg.keepGoing && !e.stopped {
			e.errs = append(e.errs, &ItemError{Index: t.index, Err: err})
		}
		return false
	}
	if err == nil && e.cfg.untilSuccess {
		// RunAny has its answer: the calls in flight are cancelled and
		// nothing more starts, not even on the slot this frees before the
		// caller has the answer, which still goes out, unless the parent
		// ended first (its callback may not have run yet).
		perr := e.parentErr()
		e.draining = perr == nil
		e.stopLocked(perr)
	}
	return true
}

// callEndedLocked counts a call that has ended, or a task that gave up
// its slots to wait aside (repark). Once the run has stopped, the
// consumer may be waiting for the calls to end (awaitFailure): it is
// woken.
func (e *engine[T, R]) callEndedLocked() {
	e.running--
	if e.stopped {
		e.wakeConsumerLocked()
	}
}

// deliversLocked says whether a result that ended with err goes to the
// consumer: until the run stops, and after it stopped for a task's
// failure, a success that fn returned before the failure (attempt), while
// the results that finished before the failure are handed out.
func (e *engine[T, R]) deliversLocked(err error) bool {
	if e.mode == discard {
		return false
	}
	return !e.stopped || (err == nil && !e.cfg.untilSuccess && e.drainingLocked())
}

// waitRoomLocked waits on room until signalled.
func (e *engine[T, R]) waitRoomLocked() {
	e.roomWaits++
	e.room.Wait()
	e.roomWaits--
}

// signalRoomLocked wakes a goroutine waiting for room, if there is one,
// unless inputs wait in the feeder's queue: while they do, every free
// worker has a task to take, and a further input would only wait too. The
// worker that empties the queue wakes the feeder then (runQueued), so the
// feeder queues inputs a window at a time instead of one per wake-up.
func (e *engine[T, R]) signalRoomLocked() {
	if e.roomWaits > 0 && e.tasks.n == 0 {
		e.room.Signal()
	}
}

// releaseLocked frees a delivered task's slots.
func (e *engine[T, R]) releaseLocked(k *keyState) {
	e.open--
	if k != nil {
		k.open--
	}
	if (k != nil && k.waiting > 0) || (e.cfg.ordered && e.parked > 0) {
		e.lanesDue = true // a waiting input may start now
		e.callLentLocked()
	}
	if e.drainedLocked() {
		e.wakeConsumerLocked()
	}
}

// drainedLocked says whether the source has ended and every input it gave
// has been delivered: the consumer has nothing more to wait for.
func (e *engine[T, R]) drainedLocked() bool {
	return e.pulledAll && e.open == 0 && e.parked == 0
}

// endInputsLocked records that the source has ended, and wakes whoever
// waits for that: idle workers, and the consumer once all is delivered.
func (e *engine[T, R]) endInputsLocked() {
	e.pulledAll = true
	e.wakeIdleLocked()
	if e.drainedLocked() {
		e.wakeConsumerLocked()
	}
}

// receive waits for the next result the consumer may have. ok is false
// once the run has ended: it has stopped (e.err and e.panicked say why) or
// every input has been delivered.
func (e *engine[T, R]) receive() (r result[T, R], ok bool) {
	if e.handoff != nil {
		return e.receiveHanded()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		if !e.handsOutLocked() {
			return r, false
		}
		if r, ok = e.out.pop(); ok {
			e.releaseLocked(r.key)
			e.signalRoomLocked()
			return r, true
		}
		if e.stopped || e.drainedLocked() {
			return r, false
		}
		e.waiting = true
		e.mu.Unlock()
		<-e.ready
		e.mu.Lock()
	}
}

// drainingLocked says whether a stopped run still hands out the results
// that finished before it stopped, ahead of its error: only after a
// task's failure or RunAny's answer, and no more once a panic came. The
// parent's end cuts a failure's short, but not RunAny's: its answer came
// first, and is the call's.
func (e *engine[T, R]) drainingLocked() bool {
	return e.draining && e.panicked == nil && (!e.parentEnded() || e.cfg.untilSuccess)
}

// isContextError says whether err comes from a context ending.
func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// checkMeters returns the first configuration error a meter reports, as a
// bad option that wraps it; where says where the meters were given.
func checkMeters(ms []throttle.Meter, where string) error {
	for _, m := range ms {
		if c, ok := m.(throttle.Checker); ok {
			if err := c.Err(); err != nil {
				return badOption("%sWithMeter(%T): %w", where, m, err)
			}
		}
	}
	return nil
}

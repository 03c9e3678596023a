package trimeter

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/trimeter-go/trimeter/internal/nils"
	"github.com/trimeter-go/trimeter/throttle"
)

// An Option changes how a call schedules its tasks. Options are built only
// by the functions of this package. A bad value (MaxAtOnce(0), say) is not
// reported when the option is built but by the call that receives it: the
// call returns, or yields once, an error that wraps [ErrBadOption] and names
// the option and the value, and it runs nothing. An option given more
// than once (MaxAtOnce, PerKey, ...) takes the last value given, except
// WithMeter: each one adds a meter. A bad value fails the call wherever it
// is, even when a later option gives a good one.
type Option interface {
	apply(c *config)
}

type optionFunc func(c *config)

func (f optionFunc) apply(c *config) { f(c) }

// limits are the options that may appear both on a call and inside PerKey.
type limits struct {
	maxAtOnce int     // 0: unlimited
	rate      float64 // 0: unlimited
	burst     int     // 0: the default
	meters    []throttle.Meter

	// The rates and bursts that a later MaxPerSecond or MaxBurst
	// replaced, checked all the same (checkReplaced): a bad value fails the
	// call wherever it is.
	replacedRates  []float64
	replacedBursts []int
}

type config struct {
	limits
	ordered      bool
	buffer       int
	clock        clockwork.Clock
	keepGoing    bool
	untilSuccess bool            // RunAny: the first success ends the run
	perKeys      []*perKeyConfig // every PerKey given, each checked; the last is in force (perKey)
	lookahead    int
	attempts     int
	backoff      backoff
	monitor      *throttle.Monitor

	inKey bool // applying the options given to PerKey
	err   error
}

// perKey returns the PerKey in force, the last given, or nil for none.
func (c *config) perKey() *perKeyConfig {
	if len(c.perKeys) == 0 {
		return nil
	}
	return c.perKeys[len(c.perKeys)-1]
}

// fail records the first bad option.
func (c *config) fail(format string, args ...any) {
	if c.inKey {
		format = "PerKey: " + format // the option was given inside PerKey
	}
	if c.err == nil {
		c.err = badOption(format, args...)
	}
}

// badOption returns an error wrapping ErrBadOption with the message.
func badOption(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadOption}, args...)...)
}

// callOnly reports a call-level option used inside PerKey.
func (c *config) callOnly(name string) bool {
	if c.inKey {
		c.fail("%s does not apply per key: only MaxAtOnce, MaxPerSecond, MaxBurst and WithMeter do", name)
		return false
	}
	return true
}

func newConfig(opts []Option) *config {
	c := &config{clock: clockwork.NewRealClock(), lookahead: defaultLookahead, attempts: 1, backoff: defaultBackoff}
	c.applyAll(opts)
	return c
}

func (c *config) applyAll(opts []Option) {
	for i, o := range opts {
		if o == nil {
			c.fail("option %d is nil", i)
			continue
		}
		o.apply(c)
	}
}

// MaxAtOnce lets at most n tasks hold a slot at once. A task takes its slot
// when it starts and keeps it until its result has been handed to the
// consumer (or into the buffer, see [BufferSize]), retries and backoff
// included; so a slow consumer slows the work, and at most n results wait
// in memory (n + BufferSize with a buffer, whose results hold no slot).
// Without MaxAtOnce there is no limit on concurrency: the run adds workers
// as tasks wait for one, and once they end, lets idle ones end too, down to
// about 16, or as many as there are tasks running if more. With MaxAtOnce
// the limit bounds the pool too (but for one worker more under [PerKey]),
// and its workers stay until the run ends. n must be at least 1.
//
// Inside [PerKey] the same limit applies to each key separately.
func MaxAtOnce(n int) Option {
	return optionFunc(func(c *config) {
		if n < 1 {
			c.fail("MaxAtOnce(%d): must be at least 1", n)
			return
		}
		c.maxAtOnce = n
	})
}

// MaxPerSecond lets tasks start at most rate times per second, as a token
// bucket of [MaxBurst] tokens: in any window of length t, at most
// burst + rate·t attempts start, retries included, counted at the moments
// their tokens are granted. An attempt begins a few microseconds after its
// grant, more when its thread is descheduled, so the moments the attempts
// begin can go over the bound by that much, except where the default
// bucket keeps a margin for it (from 1,000/s up; see [MaxBurst]).
// Fractional rates are allowed: 0.2 is one start every five seconds. The
// rate must be positive and finite, and at least one start per 2⁵⁰ ns
// (13.03 days); rates above 10⁹ per second count as 10⁹ (see
// [throttle.NewRate] for the rounding). Waiting for a token ends at once
// when the call's context ends.
//
// On the real clock, from 200 to 5,000 starts per second, when the bucket
// holds 2 ms of tokens beyond one and the call has no [WithMeter], no
// [PerKey] and a MaxAtOnce other than 1, starts are paced: once the bucket
// runs dry, the next input is pulled when its token is due (or earlier, by
// a worker whose task has just ended) instead of at once by a worker woken
// for it, which then waited for the token. This saves waking a thread for
// every start, most of what a start costs at these rates. The next input
// being pulled later, an upstream error, a panic or the end of the input
// that it brings is found up to one token's interval (at most 5 ms) later
// when every worker is busy; and while the next start waits for the clock
// before its input is pulled, a [Watch] monitor counts no task as Waiting
// for the rate.
//
// Inside [PerKey] the same limit applies to each key separately.
func MaxPerSecond(rate float64) Option {
	return optionFunc(func(c *config) {
		if !(rate > 0) || math.IsInf(rate, 0) {
			c.fail("MaxPerSecond(%v): must be positive and finite", rate)
			return
		}
		if c.rate > 0 {
			c.replacedRates = append(c.replacedRates, c.rate)
		}
		c.rate = rate
	})
}

// MaxBurst sets the bucket size of [MaxPerSecond]: how many tasks may start
// at the same instant after a quiet spell. n must be at least 1, and the
// bucket must fill within 2⁶⁰ ns, 36.5 years (n tokens at the rate in
// force, for a MaxBurst that a later one replaced too). Without
// MaxPerSecond it has no effect.
//
// The default is 1, except on the real clock at 400 starts per second and
// more: there it is the number of tokens that accrue in 5 ms (5 at
// 1,000/s, 50 at 10,000/s, 500 at 100,000/s), because real timers wake up
// to about 1.5 ms late. With a bucket of 1, every late wake-up is
// throughput lost for good, and the only way to keep up is to wait on time
// by spinning a processor; the larger default keeps the rate within 1% of
// its target at 100,000/s at no spinning cost.
//
// From 1,000/s up, the default bucket also keeps a margin: it grants from
// all but the tokens of 250 µs of that burst (at least one: 4 of 5, 48 of
// 50, 475 of 500). A task begins some microseconds after its token is
// granted, more when its thread is descheduled, and such delays can bunch
// starts closer together than their grants. The margin absorbs delays as
// long as its tokens take to accrue (1 ms at 1,000/s, 200 µs at
// 10,000/s, 250 µs at 100,000/s): with it, the bound burst + rate·t, with
// the burst above, held at the moments the tasks began in every run
// measured, not only when their tokens were granted (where it holds
// exactly). Below 1,000/s
// the default bucket keeps no margin, as a bucket set with MaxBurst keeps
// none: the bound is exact at the grants, and the moments the tasks begin
// may go over it by those delays (two starts of a bucket of 1 may come
// some microseconds closer together than 1/rate).
//
// A fake clock (WithClock) wakes on time, so its default stays 1.
// MaxBurst(1) asks for strict spacing on the real clock too. Waits are
// precise whenever the bucket's spare tokens cannot make up for a late
// timer, that is when (n−1)/perSecond is shorter than about 1.5 ms (so
// MaxBurst(1) at any rate, MaxBurst(10) at 10,000/s, MaxBurst(100) at
// 100,000/s): the last stretch of such a wait spins, which costs up to a
// processor while waiting at high rates (see [throttle.Rate]). A bucket
// set with MaxBurst keeps no margin.
func MaxBurst(n int) Option {
	return optionFunc(func(c *config) {
		if n < 1 {
			c.fail("MaxBurst(%d): must be at least 1", n)
			return
		}
		if c.burst > 0 {
			c.replacedBursts = append(c.replacedBursts, c.burst)
		}
		c.burst = n
	})
}

// WithMeter makes every attempt also pass through m, a meter that may be
// shared with other calls (one process-wide "5 requests per second to this
// API", say). An attempt holds m's permit only while it runs, and m learns
// each attempt's outcome and duration. Several WithMeter options add
// several meters. Acquire and TryAcquire get the run's own context, which
// ends when the run stops (a break, a failure under fail-fast, RunAny's
// answer) or the parent ends: a meter that ignores it delays the stop
// while it waits. If m's Acquire or TryAcquire reports an error, the call
// ends with it under fail-fast; under [KeepGoing], and in [Outcomes], it is
// the failure of that input, which does not run, and the run goes on. If m
// implements [throttle.Checker] and its Err reports one (m was built with a
// bad value), the call reports m as a bad option before anything runs:
// its error wraps both [ErrBadOption] and m's error, and names the option
// ("WithMeter(*throttle.Rate)"). A nil m, or a nil pointer of a meter
// type, is a bad option.
// A panic in m's Acquire, TryAcquire or ForKey, or in its permits' Done,
// stops the run like one in fn and is raised again in the calling
// goroutine as a [*PanicError] (a runtime.Goexit there is handled as
// [ErrGoexit] says); the permits that attempt holds from the other meters
// are given back, or done, all the same. So does an Acquire that returns
// a nil permit and no error, which breaks the Meter contract: the attempt
// does not run, and the PanicError's Value is an error naming m's type.
// Err is called in the calling goroutine before anything runs, so a panic
// there goes straight through.
//
// Inside [PerKey], m must implement [throttle.Keyed]: each key then goes
// through m.ForKey(fmt.Sprint(key)). The same meter (one pointer, channel
// or map) given twice in the call, or twice inside PerKey, is a bad
// option; one given once in each is two meters (the call's m and the
// keys' meters from m.ForKey).
//
// A meter that does not implement [throttle.Trier] cannot be asked without
// waiting: an attempt waits in its Acquire before it asks the other meters,
// so that it holds no rate token while it waits there, and it keeps that
// permit while another meter (a rate, say) makes it wait. One exception:
// when a key's meter inside PerKey makes an input's first attempt wait,
// every permit is given back and the input waits aside, so that inputs of
// other keys can start; it asks every meter again when its wait is over.
// Of the meters that answer at once, those that take back a permit given
// back unused exactly (the rates of MaxPerSecond, the meters of package
// throttle) are asked first, then the others (a rate kept in Redis, which
// loses such a token), each time a key's before the call's. So a meter of
// the last kind gives a permit only once every meter of the other kinds
// has granted one, and an input that its key turns away takes nothing
// from the call's meters of that kind, unless it waited for one of them
// first. Between two meters of the last kind one must be asked first: a
// key's is, and its permit is lost when the call's then holds the start
// back.
// The meters of package throttle and of redismeter all implement
// throttle.Trier.
func WithMeter(m throttle.Meter) Option {
	return optionFunc(func(c *config) {
		if nils.Is(m) {
			c.fail("WithMeter(nil): needs a meter")
			return
		}
		if slices.ContainsFunc(c.meters, func(o throttle.Meter) bool { return sameMeter(o, m) }) {
			// An attempt would hold one permit of m while it waits for
			// another, which m may never grant.
			c.fail("WithMeter(%T): the same meter is given twice", m)
			return
		}
		c.meters = append(c.meters, m)
	})
}

// sameMeter says whether a and b are one meter: the same pointer, channel
// or map. (Two equal meters of other kinds, structs say, are two values,
// which may or may not share state: they are taken to be two meters.)
func sameMeter(a, b throttle.Meter) bool {
	if reflect.TypeOf(a) != reflect.TypeOf(b) {
		return false
	}
	switch va, vb := reflect.ValueOf(a), reflect.ValueOf(b); va.Kind() {
	case reflect.Pointer, reflect.Chan, reflect.Map, reflect.UnsafePointer:
		return va.Pointer() == vb.Pointer()
	}
	return false
}

// Ordered makes AMap, Outcomes, Then and ThenOutcomes yield results in
// input order.
// Results that finish early wait, holding their slots, until those before
// them are delivered; so memory stays bounded by MaxAtOnce + BufferSize
// (plus the lookahead under [PerKey]), and a slow task at the head delays
// delivery of everything behind it.
// RunAll is always ordered; RunOnEach, which yields no results, and
// RunAny, which returns the first success to finish, ignore it.
func Ordered() Option {
	return optionFunc(func(c *config) {
		if c.callOnly("Ordered()") {
			c.ordered = true
		}
	})
}

// BufferSize lets up to n finished results wait for the consumer without
// holding a MaxAtOnce slot, so that up to n more tasks may start while the
// consumer is busy. The default is 0. n must not be negative. Under
// [PerKey], a result in the buffer still holds its key's slot (the key's
// MaxAtOnce) until it is delivered.
func BufferSize(n int) Option {
	return optionFunc(func(c *config) {
		if !c.callOnly(fmt.Sprintf("BufferSize(%d)", n)) {
			return
		}
		if n < 0 {
			c.fail("BufferSize(%d): must not be negative", n)
			return
		}
		c.buffer = n
	})
}

// WithClock makes the call read time from clk: its rate limits, pauses and
// backoff waits. Tests pass a fake clock. Shared meters keep their own
// clocks. The default is the real clock; a nil clock, or a nil pointer of
// a clock type, is a bad option. A panic in one of clk's methods stops the
// run as a panic in fn does, and is raised again in the calling goroutine
// as a [*PanicError].
func WithClock(clk clockwork.Clock) Option {
	return optionFunc(func(c *config) {
		if !c.callOnly("WithClock") {
			return
		}
		if nils.Is(clk) {
			c.fail("WithClock(nil): needs a clock")
			return
		}
		c.clock = clk
	})
}

// KeepGoing makes a failed task not end the call. RunOnEach and RunAll run
// every input and return an error that joins every failure, each an
// [*ItemError] that gives the input's index; RunAll's results hold the zero
// value where a task failed. AMap and Then yield each error and go on.
// A panic still ends the call, and so does the end of the parent context.
func KeepGoing() Option {
	return optionFunc(func(c *config) {
		if c.callOnly("KeepGoing()") {
			c.keepGoing = true
		}
	})
}

// Watch makes the call count its work in m: started, finished, failed and
// retried attempts, tasks in flight and waiting, and the call's push-back
// pause in force (a key's pause under [PerKey] does not show there; a
// call's pause stops showing when the call ends, unless a longer one was
// recorded since). An attempt the run cancelled (a break, the parent's
// end, a failure under fail-fast, RunAny's answer) that returns its
// context's error or cause (context.Cause) counts as cancelled, not
// failed, and the call's meters hear [throttle.Canceled]. One Monitor may
// watch several calls; read it with m.Stats from any goroutine, during the
// run or after it. Its Limit is the MaxAtOnce of the call that began last,
// or zero when that call has none. A nil m is a bad option.
func Watch(m *throttle.Monitor) Option {
	return optionFunc(func(c *config) {
		if !c.callOnly("Watch") {
			return
		}
		if nils.Is(m) {
			c.fail("Watch(nil): needs a monitor")
			return
		}
		c.monitor = m
	})
}

// Backoff sets the waits between attempts under [Retry]: the wait before
// attempt k+1 is a random duration between half and all of base·2^(k-1),
// capped at max (exponential backoff with jitter). The defaults are 100 ms
// and 10 s. A push-back's own duration replaces the computed wait. Both
// must be positive, and base at most max.
func Backoff(base, max time.Duration) Option {
	return optionFunc(func(c *config) {
		if !c.callOnly(fmt.Sprintf("Backoff(%v, %v)", base, max)) {
			return
		}
		if base <= 0 || max <= 0 || base > max {
			c.fail("Backoff(%v, %v): both must be positive and base at most max", base, max)
			return
		}
		c.backoff = backoff{base: base, max: max}
	})
}

package redismeter

import (
	"math"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/trimeter-go/trimeter/internal/nils"
)

// An Option changes how a meter of this package works. Options are built
// only by the functions of this package. A bad value is not reported when
// the option is built but by the meter's Err method, and by every Acquire.
type Option interface {
	apply(c *config)
}

type optionFunc func(c *config)

func (f optionFunc) apply(c *config) { f(c) }

// defaultTimeout bounds each Redis call unless CallTimeout says otherwise.
const defaultTimeout = time.Second

// recheck is how long a meter under FallbackShare keeps to its local meter
// after a failed Redis call before it asks Redis again.
const recheck = time.Second

type config struct {
	clock   clockwork.Clock
	timeout time.Duration
	share   float64 // 0: fail when Redis fails
	err     error
}

func newConfig(opts []Option) config {
	c := config{clock: clockwork.NewRealClock(), timeout: defaultTimeout}
	for i, o := range opts {
		if o == nil {
			c.fail(badValue("option %d is nil", i))
			continue
		}
		o.apply(&c)
	}
	return c
}

func (c *config) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// FallbackShare chooses the fallback policy: when a Redis call fails or
// times out, the meter admits tasks through a meter of this process set to
// share of its limit, and asks Redis again a second later. For [Rate] the
// local meter has a rate of share·perSecond, as it is, and a burst of
// share·burst rounded down and at least 1; for [Concurrency], share·n
// slots rounded down and at least 1. Choose share so that the shares of
// all processes add up to at most 1: with four processes, 0.25 keeps the
// total within the limit while Redis is down.
//
// A caller of [Concurrency.Acquire] that waits for a full local meter asks
// Redis again when that second is over, without waiting for a local slot,
// and other callers do not wait behind it. A caller of [Rate.Acquire] waits
// for the local meter's next token until that second is over at most, and
// then asks Redis again; the wait [Rate.TryAcquire] reports ends then too.
// Tasks that hold a Redis slot of a Concurrency when Redis goes away keep
// running and are not counted by the local meter. Tasks that the local
// meter of a Concurrency admits are counted in Redis once it answers again:
// the first renewal after that (within a third of a lease) adds their
// slots, as it adds back any slot the process holds that Redis lacks; until
// then, other processes may be granted slots as if they did not run. Each
// meter that ForKey returns keeps a local meter of its own, so two meters
// that ForKey returned for the same key (two trimeter runs sharing the
// meter, say) admit a share each; so does a meter that ForKey returns for a
// key again (trimeter drops an idle key from its memory and asks again when
// the key comes back), whose local Rate starts with a full bucket. A
// push-back's pause (Outcome.Pause) reported on a permit of the local meter
// holds the meter that gave the permit, in this process and past Redis
// coming back (the Stats of a meter that NewRate or NewConcurrency made
// show it); other processes, and other meters that ForKey returned for the
// same key, do not learn of it. share must be greater than 0 and at most 1.
// Without this option a failed Redis call is an error that wraps
// [ErrUnavailable].
//
// The local meter is one of package throttle, with its bounds: for a Rate,
// share·perSecond must be at least one start per 2⁵⁰ ns (13.03 days), and
// share·burst tokens must accrue within 2⁶⁰ ns (36.5 years). Values that
// Redis alone would take beyond those make the meter's Err report a bad
// value whose message begins "FallbackShare:" and names the local meter's
// values.
func FallbackShare(share float64) Option {
	return optionFunc(func(c *config) {
		if !(share > 0 && share <= 1) {
			c.fail(badValue("FallbackShare(%v): must be greater than 0 and at most 1", share))
			return
		}
		c.share = share
	})
}

// CallTimeout bounds every Redis call the meter makes: the call fails with
// an error that wraps [ErrUnavailable] (or falls back, see
// [FallbackShare]) when d passes first. The default is one second. d must
// be positive. See the package documentation for the client setting that
// lets go-redis apply it.
func CallTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.fail(badValue("CallTimeout(%v): must be positive", d))
			return
		}
		c.timeout = d
	})
}

// WithClock makes the meter time its own waits on clk: the waits between
// Redis calls, the pauses it keeps locally, lease renewal, the local meter
// of [FallbackShare] and the second before Redis is asked again. Limits
// kept in Redis are timed by the Redis server's clock whatever the clock.
// The default is the real clock. A nil clock, or a nil pointer of a clock
// type, is a bad value.
func WithClock(clk clockwork.Clock) Option {
	return optionFunc(func(c *config) {
		if nils.Is(clk) {
			c.fail(badValue("WithClock(nil): needs a clock"))
			return
		}
		c.clock = clk
	})
}

// scaled returns max(1, floor(v·share)) for a share of at most 1, without
// the overflow of converting a float64 at 2⁶³ back to an int.
func scaled(v int, share float64) int {
	f := math.Floor(float64(v) * share)
	if f >= math.MaxInt {
		return v // float64(v) rounded up past math.MaxInt; share is 1
	}
	return max(1, int(f))
}

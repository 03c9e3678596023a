package throttle

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/jonboulle/clockwork"
	"github.com/trimeter-go/trimeter/internal/nils"
)

// ErrBadValue is wrapped by every error that reports a bad limit: one given
// to a constructor (NewRate, NewConcurrency, NewAdaptive), to a setter
// (SetRate, SetBurst, SetLimit) or to an option. The message names the
// value. The meters' Acquire and TryAcquire wrap it too for a nil context.
var ErrBadValue = errors.New("throttle: bad value")

// errNilContext is what a meter's Acquire and TryAcquire return for a nil
// context, which they would otherwise dereference.
var errNilContext = badValue("nil context")

func badValue(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadValue}, args...)...)
}

// An Option changes how a meter is built. Options are made only by the
// functions of this package.
type Option interface {
	apply(o *options)
}

type options struct {
	clock clockwork.Clock
	err   error
}

type optionFunc func(o *options)

func (f optionFunc) apply(o *options) { f(o) }

// WithClock makes the meter read time from clock: its rate, its pauses and
// its waits. Tests pass a fake clock. The default is the real clock.
//
// On the real clock a [Rate] waits precisely (see the Precision section of
// its doc); on any other clock every wait for the clock is a plain timer
// on that clock, so a test can see each meter waiting for a token or for a
// pause to end as exactly one timer (clockwork's BlockUntil). A meter
// waiting for a permit to be given back sets no timer. A nil clock, or a
// nil pointer of a clock type, is a bad value.
func WithClock(clock clockwork.Clock) Option {
	return optionFunc(func(o *options) {
		if nils.Is(clock) {
			o.fail(badValue("WithClock(nil): needs a clock"))
			return
		}
		o.clock = clock
	})
}

func (o *options) fail(err error) {
	if o.err == nil {
		o.err = err
	}
}

func buildOptions(opts []Option) options {
	o := options{clock: clockwork.NewRealClock()}
	for i, opt := range opts {
		if opt == nil {
			o.fail(badValue("option %d is nil", i))
			continue
		}
		opt.apply(&o)
	}
	return o
}

var realClockType = reflect.TypeOf(clockwork.NewRealClock())

// isReal reports whether clock reads the real time, so that a waiter may
// spin for the last stretch of a wait.
func isReal(clock clockwork.Clock) bool {
	return reflect.TypeOf(clock) == realClockType
}

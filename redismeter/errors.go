package redismeter

import (
	"errors"
	"fmt"

	"github.com/trimeter-go/trimeter/throttle"
)

// ErrUnavailable is wrapped by the error Acquire and TryAcquire return
// under the default failure policy when a Redis call fails or times out.
// The error also wraps the client's error and names the meter's key.
var ErrUnavailable = errors.New("redismeter: Redis unavailable")

// ErrClosed is returned by Acquire and TryAcquire of a [Concurrency] after
// its Close.
var ErrClosed = errors.New("redismeter: meter closed")

// badValue reports a bad value as the throttle package does: the error
// wraps throttle.ErrBadValue and its message names the value.
func badValue(format string, args ...any) error {
	return fmt.Errorf("%w: redismeter: "+format, append([]any{throttle.ErrBadValue}, args...)...)
}

// errNilContext is what Acquire and TryAcquire return for a nil context.
var errNilContext = badValue("nil context")

func unavailable(kind, key string, err error) error {
	return fmt.Errorf("%w: %s %q: %w", ErrUnavailable, kind, key, err)
}

package trimeter

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// Retry gives each input up to attempts attempts in total. Every attempt
// waits for its rate tokens again (the call's, its key's and every shared
// meter's), so retries never exceed a rate limit; and an input keeps its
// MaxAtOnce slots (the call's and its key's) from its first attempt until
// its result is delivered, backoff included.
//
// Between attempts the task waits as [Backoff] says, or for the push-back's
// duration when the error carries one ([Pushback]). An error that wraps a
// context error, or that was marked with [Permanent], is not retried.
// After the last attempt the task fails with a [*RetryError] that holds
// every attempt's error. When the run stops during the wait between two
// attempts (a break, a failure under fail-fast, the parent's end), the
// wait ends at once and no further attempt starts; the task ends with the
// error it has, which the run no longer reports. attempts must be at least
// 1; Retry(1) is the default and retries nothing.
func Retry(attempts int) Option {
	return optionFunc(func(c *config) {
		if !c.callOnly(fmt.Sprintf("Retry(%d)", attempts)) {
			return
		}
		if attempts < 1 {
			c.fail("Retry(%d): must be at least 1 attempt", attempts)
			return
		}
		c.attempts = attempts
	})
}

// Permanent marks err as not worth retrying: under [Retry] the task makes
// no further attempt and fails with it (inside a [RetryError] with the
// earlier attempts' errors when it came from a later attempt). errors.Is
// and errors.As see through the result to err. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// RetryError is how a task fails after more than one attempt under
// [Retry]: Errs holds every attempt's error, the last one last. (A meter
// that fails before a retry ends the task with its own error instead.) Its message is
// the last error's followed by the number of attempts ("timeout (after 3
// attempts)"); errors.Is and errors.As find any of them.
type RetryError struct {
	Errs []error
}

// Error returns the last attempt's message followed by the number of
// attempts.
func (e *RetryError) Error() string {
	n := len(e.Errs)
	if n == 0 {
		return "trimeter: no attempts"
	}
	return errText(e.Errs[n-1]) + " (after " + strconv.Itoa(n) + " attempts)"
}

// Unwrap returns every attempt's error.
func (e *RetryError) Unwrap() []error { return e.Errs }

type backoff struct{ base, max time.Duration }

var defaultBackoff = backoff{base: 100 * time.Millisecond, max: 10 * time.Second}

// wait returns the wait before attempt n+1, after n failed attempts.
func (b backoff) wait(n int) time.Duration {
	d := b.base
	for i := 1; i < n && d < b.max; i++ {
		if d > b.max/2 {
			d = b.max // doubling would pass it, or overflow
		} else {
			d *= 2
		}
	}
	half := d / 2
	return half + rand.N(d-half+1) // from half of d to d, both included
}

// retryable says whether an attempt that failed with err may be repeated.
func retryable(err error) bool {
	var p *permanentError
	return err != errLate && !errors.As(err, &p) && !isContextError(err)
}

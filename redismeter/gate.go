package redismeter

import (
	"context"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/trimeter-go/trimeter/internal/latest"
)

// A gate is a time before which a meter sends nothing to Redis: the end of
// a pause it knows of, or the moment Redis said the next token is due.
// Holding it keeps waiting callers from asking Redis again and again.
type gate struct {
	until latest.Time // on the meter's clock
}

// hold closes the gate until t, unless it is already closed for longer.
func (g *gate) hold(t time.Time) { g.until.Raise(t) }

// wait returns how long the gate stays closed after now, or 0 or less
// when it is open.
func (g *gate) wait(now time.Time) time.Duration {
	until, ok := g.until.Load()
	if !ok {
		return 0
	}
	return until.Sub(now)
}

// sleep waits d on clk, or until ctx ends or wake or stop is closed (each
// when not nil).
func sleep(ctx context.Context, clk clockwork.Clock, d time.Duration, wake, stop <-chan struct{}) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.Chan():
	case <-wake:
	case <-stop:
	}
	return nil
}

// A turnstile lets a bounded number of a meter's callers talk to Redis at
// once, so that many waiting tasks of one process do not all poll Redis.
type turnstile chan struct{}

// enter waits for a place in t until ctx ends.
func (t turnstile) enter(ctx context.Context) error { return t.enterUnless(ctx, nil) }

// enterUnless waits for a place in t until ctx ends, or stop closes: then
// it returns ErrClosed.
func (t turnstile) enterUnless(ctx context.Context, stop <-chan struct{}) error {
	select {
	case t <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return ErrClosed
	}
}

func (t turnstile) leave() { <-t }

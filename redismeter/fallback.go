package redismeter

import (
	"context"
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/trimeter-go/trimeter/throttle"
)

// localRate and localConcurrency build the local meters of the fallback
// policy. A bad value they report (a share of a rate too slow for a local
// meter, say) becomes the Redis meter's own.
func localRate(perSecond float64, burst int, clock clockwork.Clock) (throttle.Meter, error) {
	m := throttle.NewRate(perSecond, burst, throttle.WithClock(clock))
	return m, localErr(m.Err())
}

func localConcurrency(n int, clock clockwork.Clock) (throttle.Meter, error) {
	m := throttle.NewConcurrency(n, throttle.WithClock(clock))
	return m, localErr(m.Err())
}

// localErr says that err is the local meter's, which FallbackShare asked
// for, so that the caller knows which option to look at.
func localErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("FallbackShare: the local meter at the share: %w", err)
}

// tryLocal asks the local meter of the fallback policy for a permit. A
// wait of zero means the local meter cannot tell how long (a concurrency
// limit waits for a release).
func tryLocal(ctx context.Context, b *base, m throttle.Meter) (throttle.Permit, time.Duration, error) {
	var (
		p    throttle.Permit
		wait time.Duration
		err  error
	)
	if t, ok := m.(throttle.Trier); ok {
		p, wait, err = t.TryAcquire(ctx)
	} else {
		p, err = m.Acquire(ctx)
	}
	if p == nil || err != nil {
		return nil, wait, err
	}
	b.mon.Start(false)
	return &localPermit{b: b, p: p}, 0, nil
}

// acquireLocal waits for the local meter.
func acquireLocal(ctx context.Context, b *base, m throttle.Meter) (throttle.Permit, error) {
	p, err := m.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	b.mon.Start(false)
	return &localPermit{b: b, p: p}, nil
}

// localPermit is a permit of the local meter, taken while Redis was down.
type localPermit struct {
	b    *base
	p    throttle.Permit
	once once
}

// Done passes o to the local meter: the pause, like the rest, stays in
// this process.
func (l *localPermit) Done(o throttle.Outcome) {
	if !l.once.first() {
		return
	}
	l.p.Done(o)
	l.b.finish(o)
}

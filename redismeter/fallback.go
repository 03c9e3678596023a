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
// limit waits for a release); any other wait ends when it is time to ask
// Redis again, at the latest: at a small share a rate's next local token
// may be due long after Redis is back. hold is the Redis meter's, for the
// pause of a push-back (see localPermit).
func tryLocal(ctx context.Context, b *base, m throttle.Meter, hold func(time.Duration)) (throttle.Permit, time.Duration, error) {
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
	if err != nil {
		return nil, wait, err
	}
	if p == nil {
		if wait > 0 {
			wait = max(min(wait, b.untilRecheck()), minRetry)
		}
		return nil, wait, nil
	}
	b.mon.Start(false)
	return &localPermit{b: b, p: p, hold: hold}, 0, nil
}

// acquireLocal waits for the local meter.
func acquireLocal(ctx context.Context, b *base, m throttle.Meter, hold func(time.Duration)) (throttle.Permit, error) {
	p, err := m.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	b.mon.Start(false)
	return &localPermit{b: b, p: p, hold: hold}, nil
}

// localPermit is a permit of the local meter, taken while Redis was down.
type localPermit struct {
	b    *base
	p    throttle.Permit
	hold func(time.Duration) // the Redis meter's
	once once
}

// Done passes o to the local meter. A push-back's pause holds the Redis
// meter in this process too (its Stats show it), so that it outlasts
// Redis coming back; it is not stored in Redis.
func (l *localPermit) Done(o throttle.Outcome) {
	if !l.once.first() {
		return
	}
	if o.Pause > 0 {
		l.hold(o.Pause)
	}
	l.p.Done(o)
	l.b.finish(o)
}

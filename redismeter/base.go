package redismeter

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/trimeter-go/trimeter/internal/nils"
	"github.com/trimeter-go/trimeter/throttle"
)

// base is what a meter shares with the meters its ForKey returns: the
// client, the options, the counts and what it knows of Redis's health.
type base struct {
	client redis.UniversalClient
	cfg    config
	mon    *throttle.Monitor
	down   *atomic.Int64 // unix nanos until which Redis is not asked (fallback only)
}

func newBase(client redis.UniversalClient, cfg config) base {
	if nils.Is(client) { // a nil *redis.Client too: it would panic in Acquire
		cfg.fail(badValue("client is nil"))
	}
	return base{client: client, cfg: cfg, mon: throttle.NewMonitor(cfg.clock), down: new(atomic.Int64)}
}

// call gives fn a context bounded by the call timeout.
func (b *base) call(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	return fn(ctx)
}

// detached is for calls made from Done, which has no context of its own.
func (b *base) detached(fn func(ctx context.Context) error) error {
	return b.call(context.Background(), fn)
}

// local reports whether the meter should use its local meter now, because
// Redis failed less than a second ago.
func (b *base) local() bool {
	return b.cfg.share > 0 && b.untilRecheck() > 0
}

// untilRecheck is how long is left before Redis is asked again after a
// failure (zero or less once it is time).
func (b *base) untilRecheck() time.Duration {
	return time.Duration(b.down.Load() - b.cfg.clock.Now().UnixNano())
}

// failed decides what a failed Redis call means for a caller: ctx's own
// error when ctx ended, nil when the local meter takes over (and Redis is
// left alone for a second), or an error wrapping ErrUnavailable.
func (b *base) failed(ctx context.Context, kind, key string, err error) error {
	if err := ended(ctx); err != nil {
		return err
	}
	if b.cfg.share == 0 {
		return unavailable(kind, key, err)
	}
	b.down.Store(b.cfg.clock.Now().Add(recheck).UnixNano())
	return nil
}

// ended returns ctx's error, or DeadlineExceeded once its deadline has
// passed: a network deadline set from ctx may fire a moment before ctx
// itself reports it.
func ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// finish counts the end of an attempt. An Unused permit counts as started
// and finished, as Stats says: a token or slot taken from Redis is spent
// (a local permit of FallbackShare gives its own back to the local meter,
// but the start is counted alike).
func (b *base) finish(o throttle.Outcome) {
	b.mon.Finish(o.Status == throttle.Failed || o.Status == throttle.PushedBack)
}

// pauseUntil is when a pause of d asked for now ends.
func (b *base) pauseUntil(d time.Duration) time.Time {
	return b.cfg.clock.Now().Add(d)
}

// once guards a permit's Done.
type once struct{ done atomic.Bool }

func (o *once) first() bool { return o.done.CompareAndSwap(false, true) }

// hashTag returns key as it goes between the braces of the meter's Redis
// keys. Redis Cluster hashes what lies between the first '{' and the next
// '}', or the whole name when that is empty, as it would be for a key that
// starts with '}': the meter's two keys would then fall in different
// slots. Such a key gets a backslash in front, and so does a key that
// starts with a backslash, so that no two keys get the same names. (All
// keys that start with '}' then hash alike, to the tag "\": they share a
// slot, which costs nothing but spreading.)
func hashTag(key string) string {
	if strings.HasPrefix(key, "}") || strings.HasPrefix(key, `\`) {
		return `\` + key
	}
	return key
}

package redismeter

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// leases are the slots one process holds through a Concurrency and the
// meters its ForKey returned, and the goroutine that renews them. The
// goroutine runs only while the process holds at least one slot: the
// first slot starts it, and giving back the last one (or Close) stops it.
// They also count the acquire calls in flight, so that close can wait
// for them and for the removals of the slots they may have taken.
type leases struct {
	b     *base
	lease time.Duration

	mu    sync.Mutex
	held  map[string]map[string]struct{} // sorted set key -> holder ids
	count int
	// stale are slots given back, or taken by a call that failed, whose
	// removal from Redis failed: sorted set key -> holder id -> when to
	// stop trying (the zero time: not before a removal goes through).
	// Each renewal tries again, so that a slot comes back soon after
	// Redis answers again rather than when its lease ends.
	stale map[string]map[string]time.Time
	// unbounded counts the entries of stale with the zero time, at most
	// maxUnbounded.
	unbounded int
	stop      chan struct{} // closed to stop the running renewer; nil when none runs
	done      chan struct{} // closed once every renewer started so far has exited
	closed    bool

	closing    context.Context // ends at close, to wake callers waiting in Acquire
	endClosing context.CancelFunc
	calls      sync.WaitGroup // the acquire calls in flight and the removals later runs
}

// begin counts an acquire call in flight, which end ends; once close has
// begun it returns ErrClosed instead.
func (l *leases) begin() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.calls.Add(1) // under mu, so never once close has begun to wait
	return nil
}

func (l *leases) end() { l.calls.Done() }

// later runs f, a removal of a slot that a failed call may have taken, in
// a goroutine of its own that close waits for. It is called only between
// begin and end: a count above zero lets it add to calls while close
// waits.
func (l *leases) later(f func()) {
	l.calls.Add(1)
	go func() {
		defer l.calls.Done()
		f()
	}()
}

func newLeases(b *base, lease time.Duration) *leases {
	l := &leases{b: b, lease: lease, held: make(map[string]map[string]struct{}), stale: make(map[string]map[string]time.Time)}
	l.closing, l.endClosing = context.WithCancel(context.Background())
	return l
}

// add records a slot taken in Redis, and starts the renewer if none runs.
func (l *leases) add(key, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	ids := l.held[key]
	if ids == nil {
		ids = make(map[string]struct{})
		l.held[key] = ids
	}
	ids[id] = struct{}{}
	l.count++
	l.start()
	return nil
}

// start starts the renewer if none runs; l.mu is held.
func (l *leases) start() {
	if l.stop == nil {
		l.stop = make(chan struct{})
		prev := l.done
		l.done = make(chan struct{})
		go l.renew(l.stop, prev, l.done)
	}
}

// retry records slots of the sorted set key whose removal failed, for
// the renewer to remove at its next ticks. It stops trying after two
// leases: by then Redis has ended any lease such a slot had. After close
// nothing renews, and the slots end with their leases.
func (l *leases) retry(key string, ids ...any) {
	l.retryUntil(key, l.b.cfg.clock.Now().Add(satMul(2, int64(l.lease))), ids...) // a lease of over 146 years saturates
}

// retryUntilRemoved records a slot that a failed acquire call may have
// taken, for the renewer to remove at its next ticks until a removal goes
// through: Redis may run the call's script long after the call failed
// (it was busy, or the network held the call back), and the slot's lease
// begins only then, so no number of leases after the failure bounds it.
// So that a long outage cannot make the list grow without end, at most
// maxUnbounded such slots wait at a time; those beyond are tried for two
// leases, as retry does.
func (l *leases) retryUntilRemoved(key, id string) {
	l.retryUntil(key, time.Time{}, id)
}

// maxUnbounded is how many slots retryUntilRemoved keeps trying until
// their removal goes through.
const maxUnbounded = 1024

func (l *leases) retryUntil(key string, until time.Time, ids ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || len(ids) == 0 {
		return
	}
	if until.IsZero() && l.unbounded >= maxUnbounded {
		until = l.b.cfg.clock.Now().Add(satMul(2, int64(l.lease)))
	}
	set := l.stale[key]
	if set == nil {
		set = make(map[string]time.Time)
		l.stale[key] = set
	}
	for _, id := range ids {
		if _, ok := set[id.(string)]; !ok { // tried until the first deadline
			set[id.(string)] = until
			if until.IsZero() {
				l.unbounded++
			}
		}
	}
	l.start()
}

// remove forgets a slot, and stops the renewer when it was the last.
func (l *leases) remove(key, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := l.held[key]
	if _, ok := ids[id]; !ok {
		return
	}
	delete(ids, id)
	if len(ids) == 0 {
		delete(l.held, key)
	}
	l.count--
	l.haltIfIdle()
}

// haltIfIdle stops the renewer once it has nothing to renew and nothing
// to remove; l.mu is held.
func (l *leases) haltIfIdle() {
	if l.count == 0 && len(l.stale) == 0 {
		l.halt()
	}
}

// halt stops the running renewer; l.mu is held.
func (l *leases) halt() {
	if l.stop != nil {
		close(l.stop)
		l.stop = nil
	}
}

func (l *leases) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// close stops renewing for good, and waits until every renewer has
// exited and every acquire call in flight has ended, with the removals
// they left to later.
func (l *leases) close() {
	l.mu.Lock()
	l.endClosing()
	l.closed = true
	l.halt()
	done := l.done
	l.mu.Unlock()
	if done != nil {
		<-done
	}
	l.calls.Wait()
}

// renew renews every held lease each third of a lease until stop closes.
// It exits only after the renewer before it (prev), so that waiting on the
// newest done waits for all of them.
func (l *leases) renew(stop <-chan struct{}, prev, done chan struct{}) {
	defer func() {
		if prev != nil {
			<-prev
		}
		close(done)
	}()
	tick := l.b.cfg.clock.NewTicker(l.lease / 3)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.Chan():
			l.renewOnce()
		}
	}
}

// renewOnce sends one renewal per sorted set, all in one pipeline. The
// renewal adds back a held slot that Redis lacks (Redis lost it, or its
// lease ended while renewals failed), so that its task is counted again.
// A slot given back while the renewal was on its way may have been added
// back too: it is removed again once the renewal has ended. A failed
// renewal is tried again at the next tick, and so is a failed removal.
func (l *leases) renewOnce() {
	stale := l.staleNow()
	batch := l.snapshot()
	if len(batch) == 0 && len(stale) == 0 {
		return
	}
	removals := make(map[string]*redis.IntCmd, len(stale))
	answered := l.pipeline(func(ctx context.Context, pipe redis.Pipeliner) {
		for key, args := range batch {
			renewScript.Eval(ctx, pipe, []string{key}, args...)
		}
		for key, ids := range stale {
			removals[key] = pipe.ZRem(ctx, key, ids...)
		}
	})
	l.settle(stale, removals, answered)
	l.drop(l.givenBack(batch))
}

// snapshot returns, for each sorted set, the renewal script's arguments:
// the lease in milliseconds and the held ids.
func (l *leases) snapshot() map[string][]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	batch := make(map[string][]any, len(l.held))
	for key, ids := range l.held {
		args := make([]any, 0, len(ids)+1)
		args = append(args, millis(l.lease))
		for id := range ids {
			args = append(args, id)
		}
		batch[key] = args
	}
	return batch
}

// givenBack returns, for each sorted set, the ids of a snapshot's batch
// that are no longer held.
func (l *leases) givenBack(batch map[string][]any) map[string][]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	gone := make(map[string][]any)
	for key, args := range batch {
		ids := l.held[key]
		for _, id := range args[1:] {
			if _, ok := ids[id.(string)]; !ok {
				gone[key] = append(gone[key], id)
			}
		}
	}
	return gone
}

// staleNow returns the slots whose removal is to be tried again,
// forgetting those tried for long enough, and stops the renewer when that
// leaves it nothing to do.
func (l *leases) staleNow() map[string][]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.b.cfg.clock.Now()
	gone := make(map[string][]any, len(l.stale))
	for key, set := range l.stale {
		for id, until := range set {
			if until.IsZero() || now.Before(until) {
				gone[key] = append(gone[key], id)
			} else {
				delete(set, id)
			}
		}
		if len(set) == 0 {
			delete(l.stale, key)
		}
	}
	l.haltIfIdle()
	return gone
}

// removed forgets slots of the sorted set key that Redis has removed.
func (l *leases) removed(key string, ids []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	set := l.stale[key]
	if set == nil {
		return
	}
	for _, id := range ids {
		if until, ok := set[id.(string)]; ok && until.IsZero() {
			l.unbounded--
		}
		delete(set, id.(string))
	}
	if len(set) == 0 {
		delete(l.stale, key)
		l.haltIfIdle()
	}
}

// drop removes ids from their sorted sets, all in one pipeline. The ids
// of a removal that failed are tried again (retry).
func (l *leases) drop(gone map[string][]any) {
	if len(gone) == 0 {
		return
	}
	cmds := make(map[string]*redis.IntCmd, len(gone))
	answered := l.pipeline(func(ctx context.Context, pipe redis.Pipeliner) {
		for key, ids := range gone {
			cmds[key] = pipe.ZRem(ctx, key, ids...)
		}
	})
	l.settle(gone, cmds, answered)
}

// pipeline sends the commands fn queues in one pipeline, within the call
// timeout, and reports whether Redis answered it. A command's own error
// does not tell: go-redis leaves the commands of a pipeline it could not
// send (its connection could not be set up in time, say) without an
// error of their own, and returns the error alone.
func (l *leases) pipeline(fn func(ctx context.Context, pipe redis.Pipeliner)) (answered bool) {
	_ = l.b.detached(func(ctx context.Context) error {
		cmds, err := l.b.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			fn(ctx, pipe)
			return nil
		})
		// An error that is a command's own (a script's error reply, say)
		// came with Redis's answers to the others.
		answered = err == nil || slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return errors.Is(c.Err(), err) })
		return err
	})
	return answered
}

// settle books the removals of gone that cmds made, in a pipeline that
// Redis answered or not: the ids of one that went through are forgotten,
// those of one that failed tried again.
func (l *leases) settle(gone map[string][]any, cmds map[string]*redis.IntCmd, answered bool) {
	for key, ids := range gone {
		if cmd := cmds[key]; !answered || cmd == nil || cmd.Err() != nil {
			l.retry(key, ids...)
		} else {
			l.removed(key, ids)
		}
	}
}

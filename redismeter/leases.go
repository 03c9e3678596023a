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
// They also count the callers of Acquire and the acquire calls in
// flight, so that close can wait for them and for the removals of the
// slots they may have taken.
type leases struct {
	b     *base
	lease time.Duration

	mu    sync.Mutex
	held  map[string]map[string]struct{} // sorted set key -> holder ids
	count int
	// stale are slots given back, or taken by a call that failed, whose
	// give-back (releaseScript) Redis did not answer: sorted set key ->
	// holder id -> how long to keep trying. Each renewal tries again, so
	// that a slot comes back soon after Redis answers again rather than
	// when its lease ends, and its holder is recorded as given back.
	stale map[string]map[string]staleSlot
	// unbounded counts the entries of stale with the zero until, at most
	// maxUnbounded.
	unbounded int
	stop      chan struct{} // closed to stop the running renewer; nil when none runs
	done      chan struct{} // closed once every renewer started so far has exited
	closed    bool

	closing    context.Context // ends at close, to wake callers waiting in Acquire
	endClosing context.CancelFunc
	calls      sync.WaitGroup // the Acquire callers, the acquire calls in flight and the removals later runs
}

// begin counts a caller of Acquire or an acquire call in flight, which
// end ends; once close has begun it returns ErrClosed instead.
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

// later runs f, a removal of a slot that a failed call may have taken (or
// that a refused one may take, see Concurrency.abandon), in a goroutine
// of its own that close waits for. It is called only between begin and
// end: a count above zero lets it add to calls while close waits.
func (l *leases) later(f func()) {
	l.calls.Add(1)
	go func() {
		defer l.calls.Done()
		f()
	}()
}

func newLeases(b *base, lease time.Duration) *leases {
	l := &leases{b: b, lease: lease, held: make(map[string]map[string]struct{}), stale: make(map[string]map[string]staleSlot)}
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

// A staleSlot is a give-back to try again until until (the zero time:
// until one goes through). failed tells a slot that a failed acquire
// call may have taken, whose gone record lives longer (see record).
type staleSlot struct {
	until  time.Time
	failed bool
}

// retry records given-back slots of the sorted set key whose give-back
// failed, for the renewer to try again at its next ticks. It stops trying
// after two leases: by then Redis has ended any lease such a slot had.
// After close nothing renews, and the slots end with their leases.
func (l *leases) retry(key string, ids ...string) {
	l.retryUntil(key, false, ids...)
}

// retryUntilRemoved records a slot that a failed acquire call may have
// taken, for the renewer to give back at its next ticks until a give-back
// goes through: Redis may run the call's script long after the call
// failed (it was busy, or the network held the call back), and the
// slot's lease begins only then, so no number of leases after the failure
// bounds it. So that a long outage cannot make the list grow without
// end, at most maxUnbounded such slots wait at a time; those beyond are
// tried for two leases, as retry does.
func (l *leases) retryUntilRemoved(key, id string) {
	l.retryUntil(key, true, id)
}

// maxUnbounded is how many slots retryUntilRemoved keeps trying until
// their give-back goes through.
const maxUnbounded = 1024

func (l *leases) retryUntil(key string, failed bool, ids ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || len(ids) == 0 {
		return
	}
	set := l.stale[key]
	if set == nil {
		set = make(map[string]staleSlot)
		l.stale[key] = set
	}
	for _, id := range ids {
		if _, ok := set[id]; ok { // tried until the first deadline
			continue
		}
		s := staleSlot{failed: failed}
		if failed && l.unbounded < maxUnbounded {
			l.unbounded++
		} else {
			s.until = l.b.cfg.clock.Now().Add(satMul(2, int64(l.lease))) // a lease of over 146 years saturates
		}
		set[id] = s
	}
	l.start()
}

// failedRecord is how long, at least, the gone record of a slot that a
// failed acquire call may have taken lives in Redis. Such a call may run
// in Redis long after it failed: Linux keeps sending a connection's data
// until it is acknowledged for up to about 17 minutes (with tcp_retries2
// = 15, 924.6 s and then at most one more retransmission timeout of 2
// minutes), and the record begins only after the call was sent. Failed
// calls are few, so these records cost little.
const failedRecord = 20 * time.Minute

// record is how long the gone record of a slot given back lives in Redis:
// no call of its holder takes the slot again until then, however late
// Redis runs it (see releaseScript).
//
// After a task's Done, or an Acquire that gave up after Redis refused it,
// two leases. The late call is then a try of the acquire call that
// go-redis sent again (MaxRetries) and whose answer was late, or a
// renewal that failed: the process cannot tell which tasks had one, so
// every task that ends leaves a record, and so does every such Acquire,
// and the records cost Redis memory for as long as they live (some 140
// bytes each: at 1,000 tasks/s and a 30 s lease, 60,000 records, 8 MB).
// Tied to the lease, the cost stays in proportion to the harm it averts:
// a late call that comes after the record is gone holds the slot for one
// lease at most. After a failed call, failedRecord or two leases,
// whichever is longer.
func (l *leases) record(failed bool) time.Duration {
	life := satMul(2, int64(l.lease))
	if failed {
		life = max(life, failedRecord)
	}
	return life
}

// giveBack gives back the slot of holder id in the sorted set key, with
// releaseScript, and records id as given back; pause, when positive,
// pauses the key for that many milliseconds. It waits for Redis, at most
// the call timeout. When Redis does not answer in time, the renewer tries
// again at its next ticks: for two leases, or, when failed tells that a
// failed acquire call may have taken the slot, until a give-back goes
// through (see retryUntilRemoved).
func (l *leases) giveBack(key, id string, failed bool, pause int64) {
	err := l.b.detached(func(ctx context.Context) error {
		args := append([]any{pause}, l.releaseArgs(id, failed)...)
		return releaseScript.Run(ctx, l.b.client, scriptKeys(key), args...).Err()
	})
	if err != nil {
		l.retryUntil(key, failed, id)
	}
}

// releaseArgs returns releaseScript's arguments for holder id after
// the pause: the id and how long its record lives.
func (l *leases) releaseArgs(id string, failed bool) []any {
	return []any{id, millis(l.record(failed))}
}

// scriptKeys returns the keys of the acquire and release scripts for the
// sorted set "slots:{key}": it, its pause key and its gone record. They
// share the hash tag {key}, so that Redis Cluster keeps them in one slot.
func scriptKeys(slots string) []string {
	return []string{slots, slots + ":pause", goneKey(slots)}
}

// goneKey returns the key of the gone record of the sorted set slots.
func goneKey(slots string) string { return slots + ":gone" }

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

// renewOnce sends one renewal per sorted set, and the give-backs to try
// again, all in one pipeline. The renewal adds back a held slot that
// Redis lacks (Redis lost it, or its lease ended while renewals failed),
// so that its task is counted again; it leaves out a slot recorded as
// given back (see renewScript), so that a slot whose give-back Redis ran
// before the renewal stays given back, even if Redis runs the renewal
// late; a slot given back while the renewal was on its way is given back
// once more after it (giveBackAfter), for a give-back that failed. A
// failed renewal is tried again at the next tick, and so is a failed
// give-back.
func (l *leases) renewOnce() {
	stale := l.staleNow()
	batch := l.snapshot()
	if len(batch) == 0 && len(stale) == 0 {
		return
	}
	releases := make(map[string]*redis.Cmd, len(stale))
	answered := l.pipeline(func(ctx context.Context, pipe redis.Pipeliner) {
		for key, args := range batch {
			renewScript.Eval(ctx, pipe, []string{key, goneKey(key)}, args...)
		}
		for key, args := range stale {
			releases[key] = releaseScript.Eval(ctx, pipe, scriptKeys(key), append([]any{0}, args...)...)
		}
	})
	l.settle(stale, releases, answered)
	l.giveBackAfter(batch)
}

// giveBackAfter gives back again, in one pipeline, the slots of a
// renewal's batch that were given back while the renewal was on its way.
// The renewal leaves out a holder whose give-back Redis ran first (it is
// recorded), but one whose give-back failed it added back or renewed: the
// renewer would try that give-back again at its next tick, but not after
// Close, and the slot would then stay taken for a lease.
func (l *leases) giveBackAfter(batch map[string][]any) {
	gone := l.givenBack(batch)
	if len(gone) == 0 {
		return
	}
	releases := make(map[string]*redis.Cmd, len(gone))
	answered := l.pipeline(func(ctx context.Context, pipe redis.Pipeliner) {
		for key, args := range gone {
			releases[key] = releaseScript.Eval(ctx, pipe, scriptKeys(key), append([]any{0}, args...)...)
		}
	})
	for key, args := range gone {
		if cmd := releases[key]; !answered || cmd == nil || cmd.Err() != nil {
			ids := make([]string, 0, len(args)/2)
			for i := 0; i < len(args); i += 2 {
				ids = append(ids, args[i].(string))
			}
			l.retry(key, ids...)
		}
	}
}

// givenBack returns, for each sorted set of a renewal's batch, the
// releaseScript arguments after the pause for the ids that the batch
// carried and that are no longer held.
func (l *leases) givenBack(batch map[string][]any) map[string][]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	gone := make(map[string][]any)
	for key, args := range batch {
		held := l.held[key]
		for _, id := range args[1:] {
			if _, ok := held[id.(string)]; !ok {
				gone[key] = append(gone[key], l.releaseArgs(id.(string), false)...)
			}
		}
	}
	return gone
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

// staleNow returns, for each sorted set, the give-backs to try again, as
// releaseScript's arguments after the pause (pairs of a holder id and how
// long its record lives), forgetting those tried for long enough, and
// stops the renewer when that leaves it nothing to do.
func (l *leases) staleNow() map[string][]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.b.cfg.clock.Now()
	gone := make(map[string][]any, len(l.stale))
	for key, set := range l.stale {
		for id, s := range set {
			if s.until.IsZero() || now.Before(s.until) {
				gone[key] = append(gone[key], l.releaseArgs(id, s.failed)...)
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

// removed forgets given-back slots of the sorted set key whose give-back
// went through; args are releaseScript's arguments after the pause.
func (l *leases) removed(key string, args []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	set := l.stale[key]
	if set == nil {
		return
	}
	for i := 0; i < len(args); i += 2 {
		id := args[i].(string)
		if s, ok := set[id]; ok && s.until.IsZero() {
			l.unbounded--
		}
		delete(set, id)
	}
	if len(set) == 0 {
		delete(l.stale, key)
		l.haltIfIdle()
	}
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

// settle books the give-backs of stale that cmds made, in a pipeline that
// Redis answered or not: those that went through are forgotten, the
// others stay in l.stale, to be tried again at the next tick.
func (l *leases) settle(stale map[string][]any, cmds map[string]*redis.Cmd, answered bool) {
	for key, args := range stale {
		if cmd := cmds[key]; answered && cmd != nil && cmd.Err() == nil {
			l.removed(key, args)
		}
	}
}

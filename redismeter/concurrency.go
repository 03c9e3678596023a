package redismeter

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/trimeter-go/trimeter/throttle"
)

// poll is how often a waiting caller asks Redis again whether a slot has
// come free in another process; slots given back in this process wake it
// at once. Each wait is jittered by up to a quarter either way.
const poll = 10 * time.Millisecond

// minLease is the shortest lease NewConcurrency accepts.
const minLease = 10 * time.Millisecond

// Concurrency lets at most n tasks run at once across every process that
// uses the same key. Each running task holds a lease on a slot: a member
// of the Redis sorted set "slots:{key}", scored by the time its lease ends
// on the Redis server's clock. While a process holds slots, one goroutine
// renews their leases every third of a lease; when the process dies, its
// slots come back within one lease. A pause is kept under
// "slots:{key}:pause". Build one with [NewConcurrency]; it is safe for
// concurrent use, and costs one Redis round trip per start and one per
// end, and one more for an Acquire that gives up after Redis refused it.
//
// When Redis loses the sorted set (a restart without persistence, a
// flush, a failover to a replica that had not got it yet), the next
// renewal adds back every slot the process still holds, so that its
// running tasks are counted again; so does a renewal after renewals
// failed for longer than a lease. Tasks that other processes started in
// between keep running: until enough tasks finish, more than n may run
// at once, and no slot is granted while n or more are counted.
//
// A permit's Done gives its slot back with one Redis call, made and waited
// for in the caller's goroutine (at most the call timeout); when that call
// fails, the renewing goroutine tries again. A slot taken by a call whose
// reply the caller never got (ctx ended during the call, the call timed
// out, its connection broke) is given back in the background at once,
// not at the end of its lease; if Redis does not answer that call, the
// renewing goroutine tries again until one goes through, for up to 1,024
// such slots at a time, and for two leases those beyond, until Close. A
// call that go-redis sends again after its connection broke (its
// MaxRetries) gets the slot that its first run took, rather than counting
// it against itself.
//
// Redis may run a call late, after the slot it was to take or renew was
// given back: a failed call that the network or a busy Redis held back,
// the first try of a call that go-redis sent again, a renewal that
// failed. So each give-back also records the holder as given back, in
// the sorted set "slots:{key}:gone", and none of its calls takes a slot
// while the record lives: 20 minutes after a failed call (longer than
// Linux keeps sending a connection's data, about 17 minutes), or two
// leases if longer, and two leases after a Done. An Acquire asks under
// one holder at all its polls, so that the first try of a refused call
// (go-redis sent it again, and Redis refused the later try: the slots
// were all taken) takes a slot for its own caller, who gets it at the
// next poll and gives it back with Done. An Acquire that ends without a
// slot in Redis after a refusal (ctx ended, the meter was closed, or it
// got a permit of the local meter of [FallbackShare]) gives its holder
// back in the background: one Redis call and one record more (a failed
// call's own give-back covers its holder). A call that Redis runs later
// still takes the slot for one lease at most. So does a late first try of
// a refused TryAcquire: TryAcquire gives nothing back after a refusal,
// which would cost a Redis call for each. The records cost Redis memory,
// some 140 bytes each: for the tasks that ended and the Acquire calls
// that gave up after a refusal, over two leases (at 1,000 tasks/s and a
// 30 s lease, 60,000 records and 8 MB), and for the calls that failed,
// over 20 minutes (a Redis so slow that 1,000 calls a second time out
// keeps 1.2 million of them, 170 MB). The key expires with its last
// record.
//
// A Concurrency implements [throttle.Meter], [throttle.Trier],
// [throttle.Keyed], [throttle.Checker] and [throttle.Watcher]. Call Close
// when done with it, to stop its renewing goroutine.
type Concurrency struct {
	base
	key      string
	n        int
	lease    time.Duration
	err      error
	root     bool
	leases   *leases // shared with the meters ForKey returns
	ids      *holderIDs
	gate     gate
	turn     turnstile
	freed    signal
	fallback throttle.Meter // nil under the fail policy
}

// NewConcurrency returns a meter that lets at most n tasks run at once
// across every process that uses key on the same Redis. lease is how long
// a slot stays taken without renewal: the slots of a process that dies
// come back within it. Choose it well above the time a renewal takes
// (the call timeout, one second by default); it must be at least 10 ms.
//
// A bad value (a nil client, an empty key, n below 1, a short lease, a
// bad option) does not panic: Err reports it, naming the value, and every
// Acquire returns it. See [FallbackShare] for what happens when Redis
// fails.
func NewConcurrency(client redis.UniversalClient, key string, n int, lease time.Duration, opts ...Option) *Concurrency {
	cfg := newConfig(opts)
	cfg.fail(checkConcurrency(key, n, lease))
	b := newBase(client, cfg)
	c := newConcurrency(b, key, n, lease, newLeases(&b, lease), newHolderIDs())
	c.root = true
	c.mon.SetLimit(int64(n))
	return c
}

func checkConcurrency(key string, n int, lease time.Duration) error {
	switch {
	case key == "":
		return badValue("NewConcurrency: key is empty")
	case n < 1:
		return badValue("NewConcurrency(n %d): must be at least 1", n)
	case lease < minLease:
		return badValue("NewConcurrency(lease %v): must be at least %v", lease, minLease)
	}
	return nil
}

func newConcurrency(b base, key string, n int, lease time.Duration, l *leases, ids *holderIDs) *Concurrency {
	c := &Concurrency{base: b, key: key, n: n, lease: lease, err: b.cfg.err, leases: l, ids: ids, turn: make(turnstile, 1)}
	if c.err == nil && b.cfg.share > 0 {
		c.fallback, c.err = localConcurrency(scaled(n, b.cfg.share), b.cfg.clock)
	}
	return c
}

// Err returns the error that names the bad value the meter was built with,
// or nil.
func (c *Concurrency) Err() error { return c.err }

// Stats returns the meter's counts in this process, for the meter and
// every meter its ForKey returned; a permit done Unused counts as started
// and finished. Limit is n. PausedUntil is the end of the latest pause
// this process set or learned of on the meter's own key.
func (c *Concurrency) Stats() throttle.Stats { return c.mon.Stats() }

// ForKey returns a Concurrency with the same limit, lease and options on
// the key key + ":" + k, for trimeter.PerKey. Its counts add to c's Stats,
// its leases are renewed by c's goroutine, and c's Close closes it too.
// Under [FallbackShare] each meter ForKey returns keeps its own local
// meter.
func (c *Concurrency) ForKey(k string) throttle.Meter {
	return newConcurrency(c.base, c.key+":"+k, c.n, c.lease, c.leases, c.ids)
}

// Close stops renewing the leases of c and of the meters its ForKey
// returned (they share one set of leases: closing any of them closes them
// all). A caller waiting in Acquire, for its turn, between two polls of
// Redis or in the local meter of [FallbackShare], returns [ErrClosed] at
// once, and Acquire and TryAcquire return it from then on. A caller whose
// Redis call is in flight returns ErrClosed when that call ends: go-redis
// cannot cut it short.
//
// Close returns once the renewing goroutine has exited, the callers of
// Acquire have returned, the acquire calls in flight have ended, and any
// slot that one of them may have taken without its caller getting a
// permit (the call failed, or ended after Close) has been given back, and
// so has the holder of an Acquire that Redis refused (see [Concurrency]):
// about two call timeouts at most, one for the call and one for the
// give-back. Slots still held are given back when their permits are done
// (Close does not wait for such a give-back in flight), or else when
// their leases end; so is a slot whose give-back Redis did not answer in
// time, which the renewing goroutine would have tried again at its next
// ticks until Close. Close makes no Redis call of its own, and returns
// nil.
func (c *Concurrency) Close() error {
	c.leases.close()
	return nil
}

// Acquire waits until a slot is free and returns its permit. One caller
// per meter and process asks Redis at a time, every 10 ms or so (at once
// when this process gives a slot back); the others wait their turn. When
// ctx ends first it returns ctx's error at once, or, if a Redis call is
// in flight, when the call ends: at ctx's deadline, or at the call timeout
// for a ctx cancelled without one (see the package documentation). When
// Redis fails it returns an error that wraps [ErrUnavailable], or falls
// back (see [FallbackShare]): a caller that waits for a full local meter
// gives up its turn, and asks Redis again when the second after the
// failure is over, whether or not a local slot came free. After Close it
// returns [ErrClosed]. A meter built with a bad value returns that error,
// and a nil ctx an error that wraps throttle.ErrBadValue.
func (c *Concurrency) Acquire(ctx context.Context) (throttle.Permit, error) {
	if c.err != nil {
		return nil, c.err
	}
	if ctx == nil {
		return nil, errNilContext
	}
	if err := c.leases.begin(); err != nil {
		return nil, err
	}
	defer c.leases.end()
	c.mon.Wait(1)
	defer c.mon.Wait(-1)
	var h holder
	defer c.abandon(&h)
	for {
		p, full, err := c.acquireRedis(ctx, &h)
		if !full {
			return p, err
		}
		p, err = c.acquireLocal(ctx)
		if err != errRecheck {
			return p, err
		}
	}
}

// acquireRedis waits its turn and asks Redis until it gets a permit or an
// error. Under the fallback policy it also returns, with full set, when
// the local meter is full: the caller then waits for it without the turn.
func (c *Concurrency) acquireRedis(ctx context.Context, h *holder) (p throttle.Permit, full bool, err error) {
	if err := c.turn.enterUnless(ctx, c.leases.closing.Done()); err != nil {
		return nil, false, err
	}
	defer c.turn.leave()
	for {
		freed := c.freed.wait()
		p, wait, err := c.try(ctx, h)
		if p != nil || err != nil {
			return p, false, err
		}
		if wait <= 0 && c.fallback != nil {
			return nil, true, nil
		}
		if err := sleep(ctx, c.cfg.clock, wait, freed, c.leases.closing.Done()); err != nil {
			return nil, false, err
		}
	}
}

// errRecheck ends a wait for the local meter when it is time to ask Redis
// again.
var errRecheck = errors.New("redismeter: time to ask Redis again")

// acquireLocal waits for the local meter of the fallback policy until ctx
// ends, the meter is closed, or it is time to ask Redis again: then it
// returns errRecheck.
func (c *Concurrency) acquireLocal(ctx context.Context) (throttle.Permit, error) {
	d := c.untilRecheck()
	if d <= 0 {
		return nil, errRecheck
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(c.leases.closing, func() { cancel(ErrClosed) })
	defer stop()
	recheck := c.cfg.clock.AfterFunc(d, func() { cancel(errRecheck) })
	defer recheck.Stop()
	p, err := acquireLocal(ctx, &c.base, c.fallback, c.hold)
	if cause := context.Cause(ctx); err != nil && (cause == ErrClosed || cause == errRecheck) {
		return nil, cause
	}
	p, _, err = c.counted(p, 0, err)
	return p, err
}

// counted records p, a permit of the local meter, as a slot this process
// holds, so that the first renewal after Redis answers again counts its
// task in Redis too (a renewal adds back the held slots Redis lacks). Once
// the meter is closed nothing renews, and p stays the local meter's alone.
func (c *Concurrency) counted(p throttle.Permit, wait time.Duration, err error) (throttle.Permit, time.Duration, error) {
	if p == nil {
		return p, wait, err
	}
	id := c.ids.next()
	if c.leases.add(c.slotsKey(), id) != nil {
		return p, wait, err
	}
	return &countedPermit{c: c, id: id, local: p}, wait, err
}

// countedPermit is a permit of the local meter whose task the leases
// count in Redis, once Redis answers again.
type countedPermit struct {
	c     *Concurrency
	id    string
	local throttle.Permit
	once  once
}

// Done gives the local slot back, and the slot in Redis that a renewal may
// have added for it: at once when Redis answers, as for a slot held in
// Redis; while Redis is taken to be down, without waiting for it, by the
// renewing goroutine at its next ticks.
func (p *countedPermit) Done(o throttle.Outcome) {
	if !p.once.first() {
		return
	}
	c := p.c
	p.local.Done(o)
	c.leases.remove(c.slotsKey(), p.id)
	if c.local() {
		c.leases.retry(c.slotsKey(), p.id)
	} else {
		c.leases.giveBack(c.slotsKey(), p.id, false, 0)
	}
	c.freed.fire()
}

// TryAcquire asks Redis for a slot once (one round trip) and returns a
// permit when it got one. Otherwise it returns how long to wait before
// asking again: the rest of a pause, or a short poll interval, also while
// the local meter of [FallbackShare] is full. Errors are as for Acquire.
func (c *Concurrency) TryAcquire(ctx context.Context) (throttle.Permit, time.Duration, error) {
	p, wait, err := c.try(ctx, new(holder))
	if p == nil && err == nil && wait <= 0 {
		wait = jitter(poll) // a full local meter cannot say when a slot comes free
	}
	return p, wait, err
}

// try is TryAcquire for holder h, except that a full local meter returns
// a wait of 0: Acquire then waits for the local meter itself.
func (c *Concurrency) try(ctx context.Context, h *holder) (throttle.Permit, time.Duration, error) {
	if err := c.usable(ctx); err != nil {
		return nil, 0, err
	}
	if d := c.gate.wait(c.cfg.clock.Now()); d > 0 {
		return nil, d, nil
	}
	if c.local() {
		return c.counted(tryLocal(ctx, &c.base, c.fallback, c.hold))
	}
	if h.id == "" {
		h.id = c.ids.next()
	}
	granted, wait, paused, err := c.take(ctx, h)
	switch {
	case err == ErrClosed:
		return nil, 0, err
	case err != nil:
		if err := c.failed(ctx, "concurrency", c.key, err); err != nil {
			return nil, 0, err
		}
		return c.counted(tryLocal(ctx, &c.base, c.fallback, c.hold))
	case paused:
		c.hold(wait)
		return nil, wait, nil
	case !granted:
		return nil, jitter(min(max(wait, time.Millisecond), poll)), nil
	}
	c.mon.Start(false)
	p := &slotPermit{c: c, id: h.id}
	*h = holder{} // the permit gives the id back
	return p, 0, nil
}

// A holder is the id under which one Acquire asks Redis for a slot, the
// same at each of its polls. Redis may run the first try of a refused
// call late (go-redis sent the call again, and Redis refused the later
// try): under the same id, that try takes a slot for this caller, who
// gets it at the next poll (the acquire script grants a holder its own
// slot again) and gives it back with its permit's Done; an Acquire that
// ends without it gives the id back instead (abandon). Either give-back
// records the id as given back, so that the try takes no slot if Redis
// runs it only then. TryAcquire asks under a holder of its own each time.
type holder struct {
	id      string
	refused bool // Redis refused a try under id, and id was not given back
}

// abandon gives back, in the background, the id of h when Redis refused a
// try under it and no permit took it: the Acquire of h ends without a
// slot of its own. It records the id as given back for two leases, as
// Done does. It is called between leases.begin and leases.end, so that
// Close waits for it.
func (c *Concurrency) abandon(h *holder) {
	if !h.refused {
		return
	}
	id := h.id
	c.leases.later(func() { c.leases.giveBack(c.slotsKey(), id, false, 0) })
}

func (c *Concurrency) usable(ctx context.Context) error {
	if c.err != nil {
		return c.err
	}
	if ctx == nil {
		return errNilContext
	}
	if c.leases.isClosed() {
		return ErrClosed
	}
	return ctx.Err()
}

// take runs the acquire script for holder h, and records the slot it
// got, or that Redis refused it. Once the meter is closed it returns
// ErrClosed, also for a call that was in flight at Close, whatever its
// outcome. When the call fails (any try of it may have reached Redis: a
// reply that timed out, a connection that broke, and go-redis reports
// only its last try's error), or succeeds after Close or after ctx ended,
// the slot it may have taken is given back at once rather than at the end
// of its lease: in the background, so that the caller gets its error at
// once rather than after one more call timeout, and Close waits for it.
// The give-back records the id as given back, so that the call takes no
// slot if Redis runs it only then (see leases.record), and h takes a new
// id at its next try. When Redis does not answer that give-back in time
// either (it is busy, or down), the renewing goroutine tries again at its
// next ticks.
func (c *Concurrency) take(ctx context.Context, h *holder) (granted bool, wait time.Duration, paused bool, err error) {
	if err := c.leases.begin(); err != nil {
		return false, 0, false, err
	}
	defer c.leases.end()
	id := h.id
	granted, wait, paused, err = c.run(ctx, id)
	switch {
	case err != nil:
		c.giveBackFailed(h)
	case granted:
		// A slot granted after ctx ended is given back: the caller gets
		// ctx's error.
		if err = ended(ctx); err == nil {
			err = c.leases.add(c.slotsKey(), id)
		}
		if err != nil {
			granted = false
			c.giveBackFailed(h)
		}
	default:
		h.refused = true
	}
	if !granted && c.leases.isClosed() {
		return false, 0, false, ErrClosed
	}
	return granted, wait, paused, err
}

// giveBackFailed gives back in the background the slot that a failed
// call under h's id may have taken, and leaves h without an id.
func (c *Concurrency) giveBackFailed(h *holder) {
	id := h.id
	*h = holder{}
	c.leases.later(func() { c.leases.giveBack(c.slotsKey(), id, true, 0) })
}

// run runs the acquire script for holder id once.
func (c *Concurrency) run(ctx context.Context, id string) (granted bool, wait time.Duration, paused bool, err error) {
	var res []int64
	err = c.call(ctx, func(ctx context.Context) error {
		res, err = acquireScript.Run(ctx, c.client, scriptKeys(c.slotsKey()), c.n, millis(c.lease), id).Int64Slice()
		return err
	})
	if err != nil {
		return false, 0, false, err
	}
	if len(res) != 3 {
		return false, 0, false, errors.New("unexpected reply to the acquire script")
	}
	return res[0] == 1, time.Duration(res[1]) * time.Millisecond, res[2] == 1, nil
}

func (c *Concurrency) slotsKey() string { return "slots:{" + hashTag(c.key) + "}" }

func (c *Concurrency) pauseKey() string { return "slots:{" + hashTag(c.key) + "}:pause" }

// hold keeps this process from asking Redis until a pause of d ends.
func (c *Concurrency) hold(d time.Duration) {
	until := c.pauseUntil(d)
	c.gate.hold(until)
	if c.root {
		c.mon.SetPause(until)
	}
}

// slotPermit is a slot held in Redis.
type slotPermit struct {
	c    *Concurrency
	id   string
	once once
}

// Done gives the slot back and wakes a caller of this process waiting for
// one; o.Pause, when positive, pauses the key in Redis for every process.
// It waits for that Redis call, at most the call timeout. The call
// records the holder as given back for two leases, so that a renewal or
// a try of the acquire call that Redis runs late does not take the slot
// again (see [Concurrency]). When Redis
// cannot be reached the renewing goroutine tries to give the slot back
// again every third of a lease, until Redis answers (for two leases at
// most: by then the lease has ended), and the pause holds in this process
// only.
func (p *slotPermit) Done(o throttle.Outcome) {
	if !p.once.first() {
		return
	}
	c := p.c
	c.leases.remove(c.slotsKey(), p.id)
	var pause int64
	if o.Pause > 0 {
		c.hold(o.Pause)
		pause = millis(o.Pause)
	}
	c.leases.giveBack(c.slotsKey(), p.id, false, pause)
	c.freed.fire()
	c.finish(o)
}

// jitter spreads d by up to a quarter either way, so that processes
// polling the same key do not keep asking in step.
func jitter(d time.Duration) time.Duration {
	return d - d/4 + rand.N(d/2+1)
}

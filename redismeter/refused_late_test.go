package redismeter

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"
	"github.com/trimeter-go/trimeter/throttle"
)

// retryingClient returns a client of Redis through px that sends a call
// again when its answer is late: with MaxRetries and a ReadTimeout shorter
// than the call timeout, a try that px holds back is followed by another
// on a new connection, and px lets the first through only when the test
// says so. It is closed when the test ends.
func retryingClient(t *testing.T, px *proxy) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:                  px.l.Addr().String(),
		ContextTimeoutEnabled: true,
		MaxRetries:            3, // so that a second try that a loaded machine makes late is tried again too
		ReadTimeout:           500 * time.Millisecond,
		DialTimeout:           time.Second,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// refusedAcquire is an Acquire that Redis refused, on a meter of one slot
// that another process holds, while the first try of its call is held
// back (refusedTry).
type refusedAcquire struct {
	m      *Concurrency
	clock  *clockwork.FakeClock // m's
	first  *heldChunk           // the acquire call's first try, held back
	held   throttle.Permit      // the other process's permit for the slot
	cancel context.CancelFunc   // ends the Acquire's context
	got    <-chan acquired      // the Acquire's outcome
}

// refusedTry sets up a meter of one slot on key, on a fake clock, whose
// slot another process holds, and starts an Acquire whose first try px
// holds back: go-redis sends the call again, and Redis refuses that try.
// It returns once the Acquire waits between two polls.
func refusedTry(t *testing.T, srv *server, key string) *refusedAcquire {
	t.Helper()
	px := newProxy(t, srv.addr())
	client := retryingClient(t, px)
	// A connection in the pool and the script in Redis, so that the next
	// chunk the client sends is the acquire call itself.
	if err := acquireScript.Load(ctx, client).Err(); err != nil {
		t.Fatal(err)
	}
	clock := clockwork.NewFakeClock()
	m := NewConcurrency(client, key, 1, time.Minute, CallTimeout(10*time.Second), WithClock(clock))
	t.Cleanup(func() { m.Close() })
	other := NewConcurrency(srv.client(t), key, 1, time.Minute)
	t.Cleanup(func() { other.Close() })
	held, err := other.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := px.holdNext()
	actx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	got := make(chan acquired, 1)
	go func() {
		p, err := m.Acquire(actx)
		got <- acquired{p, err}
	}()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	// The meter holds no slot, so its only timer is the wait between
	// polls: the try that go-redis sent again was refused.
	if err := clock.BlockUntilContext(wctx, 1); err != nil {
		t.Fatalf("the Acquire did not wait for its next poll: %v", err)
	}
	select {
	case <-first.taken:
	default:
		t.Fatal("the acquire call's first try was not held back")
	}
	return &refusedAcquire{m: m, clock: clock, first: first, held: held, cancel: cancel, got: got}
}

type acquired struct {
	p   throttle.Permit
	err error
}

// An Acquire refused by Redis gives up (its context ends) while the first
// try of its refused call, which go-redis sent again, is held back. When
// Redis runs that try after the slot came free, it takes no slot: no
// permit would ever give it back.
func TestARefusedCallsEarlierTryThatRedisRunsAfterAcquireGaveUpTakesNoSlot(t *testing.T) {
	srv := startRedis(t)
	r := refusedTry(t, srv, "refused-gave-up")
	r.cancel()
	if a := <-r.got; !errors.Is(a.err, context.Canceled) {
		t.Fatalf("Acquire whose context ended = %v, %v; want context.Canceled", a.p, a.err)
	}
	r.held.Done(throttle.Outcome{Status: throttle.Succeeded})
	settleGiveBacks(t, r.m)
	r.first.letThrough(t)
	checkFree(t, srv, "refused-gave-up", "the refused call's first try")
}

// An Acquire refused by Redis is granted the slot at its next poll, while
// the first try of its refused call, which go-redis sent again, is held
// back. When Redis runs that try after the task's Done gave the slot
// back, it takes no slot.
func TestARefusedCallsEarlierTryThatRedisRunsAfterDoneTakesNoSlot(t *testing.T) {
	srv := startRedis(t)
	r := refusedTry(t, srv, "refused-granted")
	r.held.Done(throttle.Outcome{Status: throttle.Succeeded})
	r.clock.Advance(2 * poll)
	a := <-r.got
	if a.err != nil {
		t.Fatalf("Acquire after the slot came free: %v", a.err)
	}
	a.p.Done(throttle.Outcome{Status: throttle.Succeeded})
	settleGiveBacks(t, r.m)
	r.first.letThrough(t)
	checkFree(t, srv, "refused-granted", "the refused call's first try")
}

// An Acquire refused by Redis waits for its next poll when the meter is
// closed, while the first try of its refused call, which go-redis sent
// again, is held back. Close returns once the holder is given back (and
// recorded), as nothing tries again after Close; when Redis runs the try
// after the slot came free, it takes no slot.
func TestARefusedCallsEarlierTryThatRedisRunsAfterCloseTakesNoSlot(t *testing.T) {
	srv := startRedis(t)
	r := refusedTry(t, srv, "refused-closed")
	r.m.Close()
	if n := srv.client(t).ZCard(ctx, goneKey(r.m.slotsKey())).Val(); n != 1 {
		t.Errorf("%d holders recorded as given back when Close returned, want 1", n)
	}
	if a := <-r.got; !errors.Is(a.err, ErrClosed) {
		t.Fatalf("Acquire at Close = %v, %v; want ErrClosed", a.p, a.err)
	}
	r.held.Done(throttle.Outcome{Status: throttle.Succeeded})
	r.first.letThrough(t)
	checkFree(t, srv, "refused-closed", "the refused call's first try")
}

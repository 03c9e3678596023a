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

// refusedTry sets up a meter of one slot on key, on a fake clock, whose
// slot another process holds, and starts an Acquire whose first try px
// holds back: go-redis sends the call again, and Redis refuses that try.
// It returns once the Acquire waits between two polls, with the meter,
// its clock, the first try held back, the other process's permit, a
// cancel of the Acquire's context and the Acquire's outcome.
func refusedTry(t *testing.T, srv *server, key string) (*Concurrency, *clockwork.FakeClock, *heldChunk, throttle.Permit, context.CancelFunc, <-chan acquired) {
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
	return m, clock, first, held, cancel, got
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
	m, _, first, held, cancel, got := refusedTry(t, srv, "refused-gave-up")
	cancel()
	if r := <-got; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Acquire whose context ended = %v, %v; want context.Canceled", r.p, r.err)
	}
	held.Done(throttle.Outcome{Status: throttle.Succeeded})
	settleGiveBacks(t, m)
	first.letThrough(t)
	checkFree(t, srv, "refused-gave-up", "the refused call's first try")
}

// An Acquire refused by Redis is granted the slot at its next poll, while
// the first try of its refused call, which go-redis sent again, is held
// back. When Redis runs that try after the task's Done gave the slot
// back, it takes no slot.
func TestARefusedCallsEarlierTryThatRedisRunsAfterDoneTakesNoSlot(t *testing.T) {
	srv := startRedis(t)
	m, clock, first, held, _, got := refusedTry(t, srv, "refused-granted")
	held.Done(throttle.Outcome{Status: throttle.Succeeded})
	clock.Advance(2 * poll)
	r := <-got
	if r.err != nil {
		t.Fatalf("Acquire after the slot came free: %v", r.err)
	}
	r.p.Done(throttle.Outcome{Status: throttle.Succeeded})
	settleGiveBacks(t, m)
	first.letThrough(t)
	checkFree(t, srv, "refused-granted", "the refused call's first try")
}

// An Acquire refused by Redis waits for its next poll when the meter is
// closed, while the first try of its refused call, which go-redis sent
// again, is held back. Close returns once the holder is given back (and
// recorded), as nothing tries again after Close; when Redis runs the try
// after the slot came free, it takes no slot.
func TestARefusedCallsEarlierTryThatRedisRunsAfterCloseTakesNoSlot(t *testing.T) {
	srv := startRedis(t)
	m, _, first, held, _, got := refusedTry(t, srv, "refused-closed")
	m.Close()
	if n := srv.client(t).ZCard(ctx, goneKey(m.slotsKey())).Val(); n != 1 {
		t.Errorf("%d holders recorded as given back when Close returned, want 1", n)
	}
	if r := <-got; !errors.Is(r.err, ErrClosed) {
		t.Fatalf("Acquire at Close = %v, %v; want ErrClosed", r.p, r.err)
	}
	held.Done(throttle.Outcome{Status: throttle.Succeeded})
	first.letThrough(t)
	checkFree(t, srv, "refused-closed", "the refused call's first try")
}

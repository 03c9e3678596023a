package redismeter

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"
	"github.com/trimeter-go/trimeter/throttle"
)

// staleIDs returns the holder ids of key whose give-back the renewer is
// to try again.
func staleIDs(c *Concurrency) []string {
	c.leases.mu.Lock()
	defer c.leases.mu.Unlock()
	var ids []string
	for id := range c.leases.stale[c.slotsKey()] {
		ids = append(ids, id)
	}
	return ids
}

// A give-back that the renewer tries again, in a pipeline that Redis does
// not answer in time, has not gone through: it must be tried again at the
// next renewal. (go-redis leaves the commands of a pipeline whose
// connection could not be set up without an error of their own.)
func TestAGiveBackInAPipelineThatFailedIsTriedAgain(t *testing.T) {
	client := redis.NewClient(&redis.Options{
		Addr:                  silentServer(t), // a Redis that hangs
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
	})
	defer client.Close()
	clock := clockwork.NewFakeClock() // renewals run only when the test calls them
	c := NewConcurrency(client, "hung", 1, 30*time.Second, CallTimeout(50*time.Millisecond), WithClock(clock))
	defer c.Close()
	if _, err := c.Acquire(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Acquire against a hung Redis = %v, want ErrUnavailable", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(staleIDs(c)) == 0 { // the give-back in the background fails
		if time.Now().After(deadline) {
			t.Fatal("the failed call's slot was never queued for a give-back")
		}
		time.Sleep(time.Millisecond)
	}
	c.leases.renewOnce() // Redis still does not answer
	if ids := staleIDs(c); len(ids) != 1 {
		t.Fatalf("after a renewal whose removal timed out, %d give-backs are left to try, want 1: the failed removal was taken as done", len(ids))
	}
}

// End to end: Redis is busy for 4 s, during which an acquire call times
// out (its script runs when Redis is free again, and takes a slot then)
// and the renewer's give-backs time out. Once Redis answers, the next
// renewal (every second) gives the slot back, well before its 3 s lease
// ends.
func TestTheSlotOfACallThatTimedOutComesBackOnceRedisAnswers(t *testing.T) {
	checkSlotOfACallMadeWhileBusyIsGivenBack(t, "busy-renewer", 3*time.Second, 4*time.Second) // 2 s or more still to run: a renewal tick or more
}

// A slot taken by an acquire call that timed out while Redis was busy for
// longer than two leases is taken only when Redis runs the queued script,
// after the busy spell: its lease begins then. The give-back that the
// meter keeps trying must still be tried then, so that the slot comes
// back at once rather than at the end of that lease.
func TestTheSlotOfACallRedisRanLateIsGivenBack(t *testing.T) {
	checkSlotOfACallMadeWhileBusyIsGivenBack(t, "late-script", time.Second, 3500*time.Millisecond) // over two leases after the give-back failed
}

// checkSlotOfACallMadeWhileBusyIsGivenBack makes an acquire call on key
// while Redis is busy for busy, which times out, and checks that the slot
// Redis gives it once free comes back well before its lease ends.
func checkSlotOfACallMadeWhileBusyIsGivenBack(t *testing.T, key string, lease, busy time.Duration) {
	t.Helper()
	srv := startRedis(t)
	m := NewConcurrency(srv.client(t), key, 1, lease, CallTimeout(100*time.Millisecond))
	defer m.Close()
	warmUp(t, m)
	done := busyRedis(t, srv, busy)
	if _, err := m.Acquire(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Acquire while Redis is busy: %v, want ErrUnavailable", err)
	}
	<-done
	checkGivenBackBeforeLeaseEnds(t, srv.client(t), m.slotsKey(), lease)
}

// checkGivenBackBeforeLeaseEnds watches the one slot in the sorted set
// slots and checks that it goes well before its lease would have ended.
func checkGivenBackBeforeLeaseEnds(t *testing.T, client *redis.Client, slots string, lease time.Duration) {
	t.Helper()
	deadline := time.Now().Add(lease + 5*time.Second)
	var score float64
	seen := false
	for time.Now().Before(deadline) {
		zs, err := client.ZRangeWithScores(ctx, slots, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(zs) == 0 {
			break
		}
		if !seen {
			seen, score = true, zs[0].Score
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !seen {
		return // given back before it could be seen
	}
	now, err := client.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if left := time.UnixMilli(int64(score)).Sub(now); left < lease/4 {
		t.Errorf("the timed-out call's slot was gone only %v before its lease's end (lease %v): it was not given back, it expired", left, lease)
	}
}

// hiccups makes Redis stop answering for 30 ms at a time, 5 ms apart, as
// a redis-server that a loaded machine deschedules now and then would,
// until the returned func is called.
func hiccups(t *testing.T, srv *server) (stop func()) {
	c := srv.client(t)
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	quit, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		for {
			select {
			case <-quit:
				return
			default:
			}
			// A deadline, so that a hiccup sent once the busy script is
			// in Redis, and queued behind it, holds up no stop.
			hctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			c.Eval(hctx, `
				local s = redis.call('TIME')
				local t0 = s[1] * 1000000 + s[2]
				repeat
					local n = redis.call('TIME')
				until n[1] * 1000000 + n[2] - t0 >= 30000
				return 1`, nil)
			cancel()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return func() { close(quit); <-ended }
}

// A call made once busyRedis has returned waits behind its script, also
// when Redis answers late now and then for other reasons (here its own
// hiccups; a redis-server or a test process descheduled on a loaded
// machine does the same), which a probe that took a late answer for the
// script's would mistake for it.
func TestBusyRedisHoldsUpTheCallsAfterIt(t *testing.T) {
	srv := startRedis(t)
	m := NewConcurrency(srv.client(t), "hiccup", 1, 30*time.Second, CallTimeout(100*time.Millisecond))
	defer m.Close()
	warmUp(t, m)
	stop := hiccups(t, srv)
	done := busyRedis(t, srv, time.Second)
	stop()
	p, err := m.Acquire(ctx)
	<-done
	if !errors.Is(err, ErrUnavailable) {
		if p != nil {
			p.Done(throttle.Outcome{Status: throttle.Succeeded})
		}
		t.Fatalf("Acquire after busyRedis returned = %v, want ErrUnavailable: Redis was not busy with the script", err)
	}
}

// At most maxUnbounded slots of failed calls are tried until their removal
// goes through; those beyond are tried for two leases, so that an outage
// with many failed calls cannot make the list grow without end. A removal
// that goes through makes room again.
func TestSlotsTriedUntilRemovedAreBounded(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: silentServer(t), MaxRetries: -1})
	defer client.Close()
	clock := clockwork.NewFakeClock() // renewals run only when the test calls them
	const lease = 30 * time.Second
	c := NewConcurrency(client, "bounded", 1, lease, WithClock(clock))
	defer c.Close()
	key := c.slotsKey()
	for i := range maxUnbounded + 3 {
		c.leases.retryUntilRemoved(key, fmt.Sprint("id", i))
	}
	untils := func() (unbounded, bounded int) {
		c.leases.mu.Lock()
		defer c.leases.mu.Unlock()
		for _, s := range c.leases.stale[key] {
			if s.until.IsZero() {
				unbounded++
			} else if s.until.Equal(clock.Now().Add(2 * lease)) {
				bounded++
			}
		}
		return unbounded, bounded
	}
	if u, b := untils(); u != maxUnbounded || b != 3 {
		t.Fatalf("%d slots tried until removed and %d for two leases, want %d and 3", u, b, maxUnbounded)
	}
	c.leases.removed(key, []any{"id0", int64(0), "id1", int64(0)})
	c.leases.retryUntilRemoved(key, "again")
	if u, _ := untils(); u != maxUnbounded-1 {
		t.Fatalf("after two removals and one more failed call, %d slots tried until removed, want %d", u, maxUnbounded-1)
	}
}

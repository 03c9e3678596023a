package redismeter

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"
	"github.com/trimeter-go/trimeter/throttle"
)

// meterUnderTest is what both meters of the package offer.
type meterUnderTest interface {
	throttle.Trier
	throttle.Watcher
}

// TestRedisDownFailsWithAClearError stops redis-server while workers hold
// and take permits, checks the error, and starts it again.
func TestRedisDownFailsWithAClearError(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	conc := NewConcurrency(client, "outage", 4, time.Second, CallTimeout(200*time.Millisecond))
	defer conc.Close()
	for _, m := range []meterUnderTest{NewRate(client, "outage", 1000, 10, CallTimeout(200*time.Millisecond)), conc} {
		held, err := m.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		srv.stop()
		_, err = m.Acquire(ctx)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "Redis") || !strings.Contains(err.Error(), `"outage"`) {
			t.Errorf("Acquire with Redis down = %v; want ErrUnavailable naming Redis and the key", err)
		}
		held.Done(throttle.Outcome{Status: throttle.Succeeded}) // Redis is down: nothing to give back to
		srv.start()
		if _, err := m.Acquire(ctx); err != nil {
			t.Errorf("Acquire once Redis is back: %v", err)
		}
	}
}

// TestRedisDownFallsBackToTheLocalShare checks that, under FallbackShare,
// a Rate keeps to its local share while Redis is down (timed on a fake
// clock), and goes back to Redis a second after it returns.
func TestRedisDownFallsBackToTheLocalShare(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	clock := clockwork.NewFakeClock()
	// Local share: 5/s with a burst of 2.
	m := NewRate(client, "fallback", 10, 4, FallbackShare(0.5), WithClock(clock), CallTimeout(200*time.Millisecond))
	if p, _, err := m.TryAcquire(ctx); p == nil || err != nil {
		t.Fatalf("token from Redis: %v, %v", p, err)
	}
	srv.stop()
	from := clock.Now()
	granted := 0
	for step := range 41 { // 2 s in steps of 50 ms
		for {
			p, _, err := m.TryAcquire(ctx)
			if err != nil {
				t.Fatalf("TryAcquire with Redis down under FallbackShare: %v", err)
			}
			if p == nil {
				break
			}
			granted++
			p.Done(throttle.Outcome{Status: throttle.Succeeded})
		}
		if bound := 2 + 5*clock.Since(from).Seconds(); float64(granted) > bound+1e-9 {
			t.Fatalf("%d local starts within %v, bound %.1f", granted, clock.Since(from), bound)
		}
		if step < 40 {
			clock.Advance(50 * time.Millisecond)
		}
	}
	if granted < 2+10 {
		t.Errorf("%d local starts in 2s at 5/s with a burst of 2, want 12", granted)
	}
	srv.start()
	clock.Advance(recheck)
	if p, _, err := m.TryAcquire(ctx); p == nil || err != nil {
		t.Fatalf("TryAcquire once Redis is back: %v, %v", p, err)
	}
	if n := client.Exists(ctx, "rate:{fallback}").Val(); n != 1 {
		t.Error("the first start after Redis came back did not go through Redis")
	}
}

func TestRedisDownConcurrencyFallsBackToTheLocalShare(t *testing.T) {
	srv := startRedis(t)
	m := NewConcurrency(srv.client(t), "fallback", 4, time.Second, FallbackShare(0.5), CallTimeout(200*time.Millisecond))
	defer m.Close()
	srv.stop()
	var held []throttle.Permit
	for range 2 {
		p, err := m.Acquire(ctx)
		if err != nil {
			t.Fatalf("Acquire with Redis down under FallbackShare: %v", err)
		}
		held = append(held, p)
	}
	if p, _, err := m.TryAcquire(ctx); p != nil || err != nil {
		t.Fatalf("third local slot of a share of 2 = %v, %v; want none", p, err)
	}
	held[0].Done(throttle.Outcome{Status: throttle.Succeeded})
	if p, _, err := m.TryAcquire(ctx); p == nil || err != nil {
		t.Fatalf("local slot after a release = %v, %v", p, err)
	} else {
		p.Done(throttle.Outcome{Status: throttle.Succeeded})
	}
	held[1].Done(throttle.Outcome{Status: throttle.Succeeded})
}

// Close wakes a caller waiting in the local meter of FallbackShare while
// Redis is down, which then returns ErrClosed.
func TestConcurrencyCloseWakesALocalWaiter(t *testing.T) {
	srv := startRedis(t)
	m := NewConcurrency(srv.client(t), "fallback-close", 2, time.Second, FallbackShare(0.5), CallTimeout(200*time.Millisecond))
	srv.stop()
	p, err := m.Acquire(ctx) // the one local slot
	if err != nil {
		t.Fatalf("Acquire with Redis down under FallbackShare: %v", err)
	}
	defer p.Done(throttle.Outcome{Status: throttle.Succeeded})
	done := make(chan error, 1)
	go func() {
		_, err := m.Acquire(ctx)
		done <- err
	}()
	local := m.fallback.(throttle.Watcher)
	for local.Stats().Waiting == 0 {
		time.Sleep(time.Millisecond) // until the caller waits in the local meter
	}
	m.Close()
	checkWokenByClose(t, done)
}

// silentServer accepts connections and never answers, as a Redis that hangs
// would. Its connections close when the test ends.
func silentServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// TestConcurrencyReturnsAtOnceWhenItsContextEnds: against a Redis that
// hangs, a caller whose context ends gets its error then, not after one
// more call timeout spent giving back the slot the failed call may have
// taken (that goes on in the background, and Close waits for it). The
// call timeout is an hour, so waiting for it shows as a hang.
func TestConcurrencyReturnsAtOnceWhenItsContextEnds(t *testing.T) {
	client := redis.NewClient(&redis.Options{
		Addr:                  silentServer(t),
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		ReadTimeout:           time.Hour, // the call timeout decides
		WriteTimeout:          time.Hour,
	})
	defer client.Close()
	c := NewConcurrency(client, "hung", 1, time.Second, CallTimeout(time.Hour))
	for _, try := range []bool{false, true} {
		done := make(chan error, 1)
		go func() {
			cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			var err error
			if try {
				_, _, err = c.TryAcquire(cctx)
			} else {
				_, err = c.Acquire(cctx)
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("TryAcquire=%v: got %v, want context.DeadlineExceeded", try, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("TryAcquire=%v: still waiting 20 s after its context ended", try)
		}
	}
	client.Close() // the removals in the background fail now, and Close returns
	c.Close()
}

package redismeter

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
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

// At a small share the local meter's next token may be due long after
// Redis is back: a Rate waits for it only until Redis is asked again, a
// second after the failure, as a Concurrency does for a local slot.
func TestRateWaitsForALocalTokenOnlyUntilTheRecheck(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	clock := clockwork.NewFakeClock()
	// Local share: one token every 10 s, a burst of 1.
	m := NewRate(client, "slowshare", 1, 1, FallbackShare(0.1), WithClock(clock), CallTimeout(200*time.Millisecond))
	srv.stop()
	if p, _, err := m.TryAcquire(ctx); p == nil || err != nil {
		t.Fatalf("local token with Redis down: %v, %v", p, err)
	}
	if p, wait, err := m.TryAcquire(ctx); p != nil || err != nil || wait != recheck {
		t.Errorf("TryAcquire on an empty local bucket = %v, %v, %v; want a wait of %v, until Redis is asked again", p, wait, err, recheck)
	}
	srv.start()
	for range 100 { // drop the connections of the stopped server
		if client.Ping(ctx).Err() == nil {
			break
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := m.Acquire(ctx)
		done <- err
	}()
	clock.BlockUntil(1)
	clock.Advance(recheck)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Acquire once Redis is back: %v", err)
		}
		if n := client.Exists(ctx, "rate:{slowshare}").Val(); n != 1 {
			t.Error("Acquire once Redis is back did not take its token from Redis")
		}
	case <-time.After(5 * time.Second):
		t.Error("Acquire waits for the local token, 10 s, after Redis was to be asked again")
		clock.Advance(time.Minute)
		<-done
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

// When Redis loses the slots (here it restarts empty), the next renewal
// counts again the slots this process still holds. Another process may
// take a slot in between and keep it, so the count goes past the limit
// for a while; no slot is granted until it drops below the limit again.
func TestConcurrencyCountsHeldSlotsAgainAfterRedisLosesThem(t *testing.T) {
	srv := startRedis(t)
	clock := clockwork.NewFakeClock() // a's renewals run only when the test calls them
	a := NewConcurrency(srv.client(t), "lost", 1, 30*time.Second, WithClock(clock))
	defer a.Close()
	held, err := a.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv.stop()
	srv.start()
	client := srv.client(t)
	b := NewConcurrency(client, "lost", 1, 30*time.Second) // another process
	defer b.Close()
	meanwhile, _, err := b.TryAcquire(ctx)
	if meanwhile == nil || err != nil {
		t.Fatalf("TryAcquire of the slot Redis lost = %v, %v; want a permit", meanwhile, err)
	}
	a.leases.renewOnce()
	if n := client.ZCard(ctx, a.slotsKey()).Val(); n != 2 {
		t.Fatalf("%d slots taken after a's renewal, want 2: a's counted again, and b's", n)
	}
	checkRefused := func(when string) {
		t.Helper()
		if p, wait, err := b.TryAcquire(ctx); p != nil || err != nil || wait <= 0 {
			t.Fatalf("TryAcquire %s = %v, %v, %v; want a wait", when, p, wait, err)
		}
	}
	checkRefused("with two slots taken under a limit of 1")
	meanwhile.Done(throttle.Outcome{Status: throttle.Succeeded})
	checkRefused("while a still holds the one slot")
	held.Done(throttle.Outcome{Status: throttle.Succeeded})
	if p, _, err := b.TryAcquire(ctx); p == nil || err != nil {
		t.Fatalf("TryAcquire once every slot was given back = %v, %v", p, err)
	} else {
		p.Done(throttle.Outcome{Status: throttle.Succeeded})
	}
}

// A slot given back while a renewal is in flight stays given back: the
// renewal adds back the ids Redis lacks, but not those recorded as given
// back.
func TestConcurrencyRenewalDoesNotReviveASlotGivenBack(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	clock := clockwork.NewFakeClock() // renewals run only when the test calls them
	m := NewConcurrency(client, "revive", 1, 30*time.Second, WithClock(clock))
	defer m.Close()
	p, err := m.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	held := &heldPipeline{sent: make(chan struct{}), release: make(chan struct{})}
	client.AddHook(held)
	renewed := make(chan struct{})
	go func() {
		m.leases.renewOnce()
		close(renewed)
	}()
	<-held.sent
	p.Done(throttle.Outcome{Status: throttle.Succeeded}) // in Redis before the renewal
	close(held.release)
	<-renewed
	if n := client.ZCard(ctx, m.slotsKey()).Val(); n != 0 {
		t.Errorf("%d slots taken after the renewal, want the one given back to stay so", n)
	}
}

// heldPipeline is a go-redis hook that holds the first pipeline before it
// is sent, until release closes.
type heldPipeline struct {
	sent    chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *heldPipeline) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *heldPipeline) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *heldPipeline) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.once.Do(func() {
			close(h.sent)
			<-h.release
		})
		return next(ctx, cmds)
	}
}

// Under FallbackShare, callers waiting for a full local meter do not wait
// for each other, and ask Redis again once the second after the failure
// has passed, without a local slot coming free.
func TestConcurrencyLocalWaitersAskRedisAgain(t *testing.T) {
	srv := startRedis(t)
	clock := clockwork.NewFakeClock()
	// n=3 at a share of 0.5: one local slot, and room in Redis for both
	// waiters once the renewal counts the local task there.
	m := NewConcurrency(srv.client(t), "recheck", 3, time.Second, FallbackShare(0.5), WithClock(clock), CallTimeout(200*time.Millisecond))
	defer m.Close()
	srv.stop()
	local, err := m.Acquire(ctx) // the one local slot
	if err != nil {
		t.Fatalf("Acquire with Redis down under FallbackShare: %v", err)
	}
	defer local.Done(throttle.Outcome{Status: throttle.Succeeded})
	type result struct {
		p   throttle.Permit
		err error
	}
	got := make(chan result, 2)
	for range 2 {
		go func() {
			p, err := m.Acquire(ctx)
			got <- result{p, err}
		}()
	}
	waiting := m.fallback.(throttle.Watcher)
	deadline := time.Now().Add(20 * time.Second)
	for waiting.Stats().Waiting < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the second caller did not reach the local meter: it waits behind the first")
		}
		time.Sleep(time.Millisecond)
	}
	srv.start()
	clock.Advance(recheck)
	for range 2 {
		select {
		case r := <-got:
			if r.err != nil {
				t.Fatalf("Acquire once Redis is back: %v", r.err)
			}
			defer r.p.Done(throttle.Outcome{Status: throttle.Succeeded})
			if _, ok := r.p.(*slotPermit); !ok {
				t.Errorf("Acquire once Redis is back = %T, want a slot in Redis", r.p)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a local waiter did not ask Redis again after the recheck")
		}
	}
}

// countedLocalTask builds a Concurrency of n on key with FallbackShare(share)
// and a fake clock, so that its renewals run only when the test calls
// them. It takes a permit of the local meter while Redis is down, starts
// Redis again, moves the clock by advance, and checks that a renewal
// counts the local task in Redis. The meter is closed when the test ends.
func countedLocalTask(t *testing.T, key string, n int, share float64, advance time.Duration) (*Concurrency, throttle.Permit, *redis.Client) {
	t.Helper()
	srv := startRedis(t)
	clock := clockwork.NewFakeClock()
	a := NewConcurrency(srv.client(t), key, n, 30*time.Second, FallbackShare(share), CallTimeout(200*time.Millisecond), WithClock(clock))
	t.Cleanup(func() { a.Close() })
	srv.stop()
	local, err := a.Acquire(ctx)
	if err != nil {
		t.Fatalf("Acquire with Redis down under FallbackShare: %v", err)
	}
	srv.start()
	clock.Advance(advance)
	a.leases.renewOnce()
	client := srv.client(t)
	if n := client.ZCard(ctx, a.slotsKey()).Val(); n != 1 {
		t.Fatalf("%d slots taken in Redis after the renewal, want 1: the local task's", n)
	}
	return a, local, client
}

// A task that the local meter of FallbackShare admitted while Redis was
// down is counted in Redis by the first renewal once Redis answers again,
// so that no more than n tasks run at once, and its Done gives that slot
// back.
func TestConcurrencyCountsLocalSlotsOnceRedisIsBack(t *testing.T) {
	// The meter asks Redis again: it is past the second after the failure.
	a, local, client := countedLocalTask(t, "back", 2, 0.5, 2*time.Second)
	p, _, err := a.TryAcquire(ctx)
	if p == nil || err != nil {
		t.Fatalf("TryAcquire of the second slot = %v, %v; want a permit", p, err)
	}
	if q, _, err := a.TryAcquire(ctx); q != nil || err != nil {
		t.Fatalf("TryAcquire of a third slot under n=2 = %v, %v; want none: the local task runs too", q, err)
	}
	local.Done(throttle.Outcome{Status: throttle.Succeeded})
	if n := client.ZCard(ctx, a.slotsKey()).Val(); n != 1 {
		t.Fatalf("%d slots taken in Redis after the local task's Done, want 1", n)
	}
	p.Done(throttle.Outcome{Status: throttle.Succeeded})
}

// warmUp takes a permit of m and gives it back, so that m's script is
// loaded in Redis: a call made while Redis is busy is then the script's
// own, not a load of it.
func warmUp(t *testing.T, m throttle.Meter) {
	t.Helper()
	p, err := m.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Done(throttle.Outcome{Status: throttle.Succeeded})
}

// busyRedis keeps Redis busy for d with a script, and returns once the
// script is in Redis's hands: written on a connection of its own, so that
// any command sent after busyRedis returns reaches Redis behind it and
// waits for it, which then has d less the time since busyRedis returned
// still to run. The channel closes when the script has ended.
//
// (It once sent the script from a goroutine and took a PING unanswered
// for 20 ms as the sign that the script ran. A PING answered late for
// another reason, a test process or a redis-server descheduled for 20 ms
// while the script was not yet sent, made it return before the script
// had reached Redis, and the test's own call then went through at once.)
func busyRedis(t *testing.T, srv *server, d time.Duration) <-chan struct{} {
	t.Helper()
	conn, err := net.DialTimeout("tcp", srv.addr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// A PING answered first: Redis has taken the connection in, and reads
	// what comes on it in turn with the others.
	r := bufio.NewReader(conn)
	if _, err := io.WriteString(conn, "PING\r\n"); err != nil {
		t.Fatal(err)
	}
	if pong, err := r.ReadString('\n'); err != nil || pong != "+PONG\r\n" {
		t.Fatalf("PING on the busy connection: %q, %v", pong, err)
	}
	script := `
		local s = redis.call('TIME')
		local t0 = s[1] * 1000000 + s[2]
		repeat
			local n = redis.call('TIME')
		until n[1] * 1000000 + n[2] - t0 >= tonumber(ARGV[1])
		return 1`
	args := []string{"EVAL", script, "0", strconv.FormatInt(d.Microseconds(), 10)}
	var req strings.Builder
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	// Once Write returns, the script is in the socket Redis reads from:
	// Redis reads it before anything sent later on another connection
	// (it handles the connections that have something to read in the
	// order they got it).
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = r.ReadString('\n') // ":1", or an error once the test ends
	}()
	return done
}

// A slot taken by an acquire call that timed out while Redis was busy, and
// whose give-back timed out too, is given back by a renewal once Redis
// answers again, not when its lease ends.
func TestConcurrencyGivesBackAFailedCallsSlotOnceRedisAnswers(t *testing.T) {
	srv := startRedis(t)
	clock := clockwork.NewFakeClock() // renewals run only when the test calls them
	m := NewConcurrency(srv.client(t), "busy", 1, 30*time.Second, CallTimeout(100*time.Millisecond), WithClock(clock))
	defer m.Close()
	warmUp(t, m)

	done := busyRedis(t, srv, time.Second)
	if _, err := m.Acquire(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Acquire while Redis is busy: %v, want ErrUnavailable", err)
	}
	<-done
	client := srv.client(t)
	deadline := time.Now().Add(10 * time.Second)
	for client.ZCard(ctx, m.slotsKey()).Val() != 1 {
		// the acquire script that timed out runs once Redis is free
		if time.Now().After(deadline) {
			t.Fatal("the slot of the acquire call that timed out was never taken")
		}
		time.Sleep(time.Millisecond)
	}
	m.leases.renewOnce()
	if p, wait, err := m.TryAcquire(ctx); p == nil || err != nil {
		t.Fatalf("TryAcquire after a renewal once Redis answers = %v, %v, %v; want the slot the failed call took", p, wait, err)
	} else {
		p.Done(throttle.Outcome{Status: throttle.Succeeded})
	}
}

// A local task that ends while Redis is still taken to be down, after a
// renewal counted it in Redis, gives that slot back through the next
// renewal: Done does not wait for Redis, and the slot does not stay taken
// for its lease.
func TestConcurrencyLocalTaskEndingBeforeTheRecheckGivesItsRedisSlotBack(t *testing.T) {
	a, local, client := countedLocalTask(t, "soon", 1, 1, 0)
	local.Done(throttle.Outcome{Status: throttle.Succeeded}) // within the second after the failure
	a.leases.renewOnce()
	if n := client.ZCard(ctx, a.slotsKey()).Val(); n != 0 {
		t.Fatalf("%d slots taken in Redis after the local task's Done and a renewal, want 0", n)
	}
}

// A push-back reported on a permit of the local meter, taken while Redis
// was down, holds the meter in this process past Redis coming back, and
// its Stats show it.
func TestLocalPermitsPushbackOutlastsTheOutage(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	clock := clockwork.NewFakeClock()
	meters := map[string]interface {
		throttle.Trier
		Stats() throttle.Stats
	}{
		"Rate":        NewRate(client, "pushed", 100, 10, FallbackShare(0.5), WithClock(clock), CallTimeout(200*time.Millisecond)),
		"Concurrency": NewConcurrency(client, "pushed", 4, time.Minute, FallbackShare(0.5), WithClock(clock), CallTimeout(200*time.Millisecond)),
	}
	defer meters["Concurrency"].(*Concurrency).Close()
	srv.stop()
	for name, m := range meters {
		p, _, err := m.TryAcquire(ctx)
		if p == nil || err != nil {
			t.Fatalf("%s: local permit with Redis down: %v, %v", name, p, err)
		}
		p.Done(throttle.Outcome{Status: throttle.PushedBack, Pause: 10 * time.Second})
		if got, want := m.Stats().PausedUntil, clock.Now().Add(10*time.Second); !got.Equal(want) {
			t.Errorf("%s: PausedUntil %v, want %v", name, got, want)
		}
	}
	srv.start()
	clock.Advance(2 * time.Second) // past the recheck: Redis is asked again
	for name, m := range meters {
		p, wait, err := m.TryAcquire(ctx)
		if p != nil || err != nil || wait != 8*time.Second {
			t.Errorf("%s: 2s into a 10s push-back: permit %v, wait %v, error %v; want a wait of 8s", name, p != nil, wait, err)
		}
	}
}

// A grant that comes after the caller's ctx ended, while the Redis call
// was in flight, is not handed out: Acquire returns ctx's error, and a
// slot is given back. Redis is kept busy for the call to be in flight
// when the ctx is cancelled, 50 ms in; a slower machine only cancels
// earlier, which must end the same way.
func TestAcquireCancelledDuringTheCallReturnsTheError(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	conc := NewConcurrency(client, "late", 4, time.Minute, CallTimeout(5*time.Second))
	defer conc.Close()
	meters := map[string]throttle.Meter{
		"Rate":        NewRate(client, "late", 100, 10, CallTimeout(5*time.Second)),
		"Concurrency": conc,
	}
	for name, m := range meters {
		warmUp(t, m)
		done := busyRedis(t, srv, 400*time.Millisecond)
		cctx, cancel := context.WithCancel(ctx)
		stop := time.AfterFunc(50*time.Millisecond, cancel)
		p, err := m.Acquire(cctx)
		stop.Stop()
		cancel()
		<-done
		if p != nil || !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Acquire cancelled during its call = %v, %v; want no permit and context.Canceled", name, p != nil, err)
		}
	}
	for range 100 {
		if n := client.ZCard(ctx, "slots:{late}").Val(); n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d slots left in Redis after the cancelled Acquire", client.ZCard(ctx, "slots:{late}").Val())
}

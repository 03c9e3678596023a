package redismeter

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"
	"github.com/trimeter-go/trimeter/throttle"
)

// A proxy passes bytes between go-redis and redis-server, and can hold
// back the next chunk that a client sends, as a network that delays a
// packet does, until the test lets it through. It is closed when the test
// ends.
type proxy struct {
	target string
	l      net.Listener
	wg     sync.WaitGroup

	mu    sync.Mutex
	next  *heldChunk // the next chunk read is held; nil: none
	held  []*heldChunk
	conns []net.Conn
}

// A heldChunk is a chunk of a client's bytes that a proxy holds back.
type heldChunk struct {
	taken   chan struct{} // closed once a chunk is held
	release chan struct{} // closed to let it through
	ran     chan struct{} // closed once Redis has answered it
	once    sync.Once
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{target: target, l: l}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// client returns a client of Redis through the proxy, as server.client
// does, closed when the test ends.
func (p *proxy) client(t *testing.T) *redis.Client {
	c := newClient(p.l.Addr().String())
	t.Cleanup(func() { c.Close() })
	return c
}

// holdNext holds back the next chunk that any client sends.
func (p *proxy) holdNext() *heldChunk {
	h := &heldChunk{taken: make(chan struct{}), release: make(chan struct{}), ran: make(chan struct{})}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next = h
	p.held = append(p.held, h)
	return h
}

func (h *heldChunk) let() { h.once.Do(func() { close(h.release) }) }

// letThrough lets the held chunk through and waits until Redis has
// answered it: the call it carried has run.
func (h *heldChunk) letThrough(t *testing.T) {
	t.Helper()
	select {
	case <-h.taken:
	default:
		t.Fatal("no chunk was held back")
	}
	h.let()
	select {
	case <-h.ran:
	case <-time.After(10 * time.Second):
		t.Fatal("Redis did not answer the chunk held back within 10 s of its release")
	}
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		var awaited atomic.Pointer[heldChunk] // let through, and not answered yet
		p.wg.Add(2)
		go p.up(c, s, &awaited)
		go p.down(s, c, &awaited)
	}
}

// up passes what the client c sends on to the server s, holding back a
// chunk when asked to.
func (p *proxy) up(c, s net.Conn, awaited *atomic.Pointer[heldChunk]) {
	defer p.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if h := p.take(); h != nil {
				close(h.taken)
				<-h.release
				awaited.Store(h)
			}
			if _, err := s.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return // the server connection stays open, so that Redis answers what it got
		}
	}
}

// down passes what the server s answers on to the client c, which may
// have gone: the answer is dropped then.
func (p *proxy) down(s, c net.Conn, awaited *atomic.Pointer[heldChunk]) {
	defer p.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if h := awaited.Swap(nil); h != nil {
				close(h.ran)
			}
			_, _ = c.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) take() *heldChunk {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.next
	p.next = nil
	return h
}

func (p *proxy) close() {
	p.l.Close()
	p.mu.Lock()
	for _, h := range p.held {
		h.let()
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// settleGiveBacks waits for m's give-backs in the background to end, and
// then tries again those that Redis did not answer in time (m's clock is
// fake: its renewer runs only when called) until none is left.
func settleGiveBacks(t *testing.T, m *Concurrency) {
	t.Helper()
	m.leases.calls.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for len(staleIDs(m)) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("a give-back did not go through within 10 s")
		}
		m.leases.renewOnce()
	}
}

// checkFree checks that the one slot of key is free, from another
// process.
func checkFree(t *testing.T, srv *server, key, late string) {
	t.Helper()
	other := NewConcurrency(srv.client(t), key, 1, time.Minute)
	defer other.Close()
	p, wait, err := other.TryAcquire(ctx)
	if p == nil || err != nil {
		t.Fatalf("TryAcquire from another process = %v, %v, %v; want the slot: %s took it again after its give-back", p, wait, err, late)
	}
	p.Done(throttle.Outcome{Status: throttle.Succeeded})
}

// An acquire call that fails (it timed out here) and that the network
// holds back until after the give-back of the slot it may take, which the
// meter makes at once, takes no slot when Redis runs it: the slot is not
// kept from every process for a lease.
func TestAFailedCallThatRedisRunsAfterItsGiveBackTakesNoSlot(t *testing.T) {
	srv := startRedis(t)
	px := newProxy(t, srv.addr())
	m := NewConcurrency(px.client(t), "late-call", 1, time.Minute, CallTimeout(time.Second), WithClock(clockwork.NewFakeClock()))
	defer m.Close()
	warmUp(t, m)
	h := px.holdNext()
	if p, err := m.Acquire(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Acquire whose call is held back = %v, %v; want ErrUnavailable", p, err)
	}
	settleGiveBacks(t, m)
	h.letThrough(t)
	checkFree(t, srv, "late-call", "the failed call")
}

// With MaxRetries and a ReadTimeout shorter than the call timeout,
// go-redis sends an acquire call again when the first try's answer is
// late, and the second try gets the slot. The first try, which the
// network held back, takes no slot when Redis runs it after the task's
// Done gave the slot back.
func TestAnEarlierTryThatRedisRunsAfterDoneTakesNoSlot(t *testing.T) {
	srv := startRedis(t)
	px := newProxy(t, srv.addr())
	m := NewConcurrency(retryingClient(t, px), "late-try", 1, time.Minute, CallTimeout(10*time.Second), WithClock(clockwork.NewFakeClock()))
	defer m.Close()
	warmUp(t, m)
	h := px.holdNext()
	p, err := m.Acquire(ctx)
	if err != nil {
		t.Fatalf("Acquire whose first try is held back: %v, want the second try's slot", err)
	}
	p.Done(throttle.Outcome{Status: throttle.Succeeded})
	settleGiveBacks(t, m)
	h.letThrough(t)
	checkFree(t, srv, "late-try", "the first try")
}

// A renewal that fails (it timed out here) and that the network holds
// back until after the task's Done gave its slot back does not add that
// slot back when Redis runs it.
func TestARenewalThatRedisRunsAfterDoneDoesNotReviveTheSlot(t *testing.T) {
	srv := startRedis(t)
	px := newProxy(t, srv.addr())
	m := NewConcurrency(px.client(t), "late-renewal", 1, time.Minute, CallTimeout(time.Second), WithClock(clockwork.NewFakeClock()))
	defer m.Close()
	p, err := m.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := px.holdNext()
	m.leases.renewOnce() // times out
	p.Done(throttle.Outcome{Status: throttle.Succeeded})
	settleGiveBacks(t, m)
	h.letThrough(t)
	checkFree(t, srv, "late-renewal", "the renewal")
}

// The record of given-back holders is kept per key, also for the meters
// ForKey returns, in a key that expires with its last record: two leases
// after a Done.
func TestGoneRecordsAreKeptPerKeyAndExpire(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	const lease = 10 * time.Second
	m := NewConcurrency(client, "records", 1, lease)
	defer m.Close()
	for _, k := range []string{"", "host"} {
		var meter throttle.Meter = m
		gone := "slots:{records}:gone"
		if k != "" {
			meter, gone = m.ForKey(k), "slots:{records:"+k+"}:gone"
		}
		warmUp(t, meter)
		n, err := client.ZCard(ctx, gone).Result()
		if err != nil {
			t.Fatal(err)
		}
		ttl, err := client.PTTL(ctx, gone).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 || ttl <= lease || ttl > 2*lease {
			t.Errorf("%s after one task: %d records, expiring in %v; want 1, in two leases (%v)", gone, n, ttl, 2*lease)
		}
	}
}

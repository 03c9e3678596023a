package redismeter

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"
	"github.com/trimeter-go/trimeter/throttle"
)

func TestConcurrencyBadValuesAreReportedNotPanicked(t *testing.T) {
	client := newClient("127.0.0.1:1") // never dialled
	defer client.Close()
	for _, tc := range []struct {
		name string
		m    *Concurrency
		want string
	}{
		{"nil client", NewConcurrency(nil, "k", 1, time.Second), "client is nil"},
		{"empty key", NewConcurrency(client, "", 1, time.Second), "key is empty"},
		{"zero n", NewConcurrency(client, "k", 0, time.Second), "n 0"},
		{"short lease", NewConcurrency(client, "k", 1, time.Millisecond), "lease 1ms"},
		{"bad share", NewConcurrency(client, "k", 1, time.Second, FallbackShare(-1)), "FallbackShare(-1)"},
		{"nil pointer clock", NewConcurrency(client, "k", 1, time.Second, WithClock((*clockwork.FakeClock)(nil))), "WithClock(nil)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkBad(t, tc.m, tc.want)
			tc.m.Close()
		})
	}
}

func TestConcurrencyLimitIsReachedAndHeldAcrossProcesses(t *testing.T) {
	srv := startRedis(t)
	a := NewConcurrency(srv.client(t), "slots", 3, time.Second)
	b := NewConcurrency(srv.client(t), "slots", 3, time.Second) // another client: another process
	defer a.Close()
	defer b.Close()
	var held []throttle.Permit
	for i, m := range []*Concurrency{a, b, a} {
		p, _, err := m.TryAcquire(ctx)
		if p == nil || err != nil {
			t.Fatalf("slot %d: %v, %v", i, p, err)
		}
		held = append(held, p)
	}
	p, wait, err := b.TryAcquire(ctx)
	if p != nil || err != nil || wait <= 0 || wait > 2*poll {
		t.Fatalf("TryAcquire past the limit = %v, %v, %v; want a short poll", p, wait, err)
	}
	held[0].Done(throttle.Outcome{Status: throttle.Succeeded})
	if p, _, err := b.TryAcquire(ctx); p == nil || err != nil {
		t.Fatalf("TryAcquire after a release = %v, %v", p, err)
	} else {
		held[0] = p
	}
	if s := a.Stats(); s.Limit != 3 || s.InFlight != 1 || s.Finished != 1 {
		t.Errorf("Stats = %+v, want limit 3, 1 in flight, 1 finished", s)
	}
	for _, p := range held {
		p.Done(throttle.Outcome{Status: throttle.Succeeded})
	}
	if n := srv.client(t).ZCard(ctx, "slots:{slots}").Val(); n != 0 {
		t.Errorf("%d slots still taken after every permit was done", n)
	}
}

// TestConcurrencyIsNeverExceeded runs workers through two meters on one
// key and measures the peak number of tasks between Acquire and Done.
func TestConcurrencyIsNeverExceeded(t *testing.T) {
	srv := startRedis(t)
	const n = 3
	ms := []*Concurrency{
		NewConcurrency(srv.client(t), "gauge", n, time.Second),
		NewConcurrency(srv.client(t), "gauge", n, time.Second),
	}
	var inside, peak atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := ms[w%2]
			for range 15 {
				p, err := m.Acquire(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				now := inside.Add(1)
				for old := peak.Load(); now > old && !peak.CompareAndSwap(old, now); old = peak.Load() {
				}
				// Hold the slot a while, so that slots held at once overlap
				// here: without the limit, all eight workers would.
				time.Sleep(2 * time.Millisecond)
				inside.Add(-1)
				p.Done(throttle.Outcome{Status: throttle.Succeeded})
			}
		}()
	}
	wg.Wait()
	for _, m := range ms {
		m.Close()
	}
	if got := peak.Load(); got > n {
		t.Errorf("peak in flight %d, limit %d", got, n)
	}
}

func TestConcurrencyReleaseWakesAWaiterOfTheProcessAtOnce(t *testing.T) {
	srv := startRedis(t)
	clock := clockwork.NewFakeClock() // its poll timer never fires by itself
	m := NewConcurrency(srv.client(t), "wake", 1, time.Second, WithClock(clock))
	defer m.Close()
	first, err := m.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error)
	go func() {
		p, err := m.Acquire(ctx)
		if err == nil {
			p.Done(throttle.Outcome{Status: throttle.Succeeded})
		}
		got <- err
	}()
	// The renewal ticker and the waiter's poll timer.
	if err := clock.BlockUntilContext(ctx, 2); err != nil {
		t.Fatal(err)
	}
	first.Done(throttle.Outcome{Status: throttle.Succeeded})
	if err := <-got; err != nil {
		t.Fatalf("waiter: %v", err)
	}
}

func TestConcurrencyPauseHoldsOffOtherProcesses(t *testing.T) {
	srv := startRedis(t)
	a := NewConcurrency(srv.client(t), "pushed", 5, time.Second)
	b := NewConcurrency(srv.client(t), "pushed", 5, time.Second)
	defer a.Close()
	defer b.Close()
	p, err := a.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Done(throttle.Outcome{Status: throttle.PushedBack, Pause: 2 * time.Second})
	p, wait, err := b.TryAcquire(ctx)
	if p != nil || err != nil || wait < time.Second || wait > 2*time.Second {
		t.Fatalf("TryAcquire during another's pause = %v, %v, %v; want a wait of about 2s", p, wait, err)
	}
	if b.Stats().PausedUntil.IsZero() || a.Stats().PausedUntil.IsZero() {
		t.Error("Stats().PausedUntil is zero during a pause")
	}
}

func TestConcurrencyForKeyGivesEachKeyItsSlots(t *testing.T) {
	srv := startRedis(t)
	m := NewConcurrency(srv.client(t), "host", 1, time.Second)
	defer m.Close()
	a, b := m.ForKey("a").(*Concurrency), m.ForKey("b").(*Concurrency)
	pa, _, err := a.TryAcquire(ctx)
	if pa == nil || err != nil {
		t.Fatalf("key a: %v, %v", pa, err)
	}
	if p, _, err := a.TryAcquire(ctx); p != nil || err != nil {
		t.Fatalf("key a again: %v, %v; want a wait", p, err)
	}
	pb, _, err := b.TryAcquire(ctx)
	if pb == nil || err != nil {
		t.Fatalf("key b: %v, %v", pb, err)
	}
	if n := srv.client(t).Exists(ctx, "slots:{host:a}", "slots:{host:b}").Val(); n != 2 {
		t.Errorf("%d of the sets slots:{host:a} and slots:{host:b} exist, want both", n)
	}
	pa.Done(throttle.Outcome{Status: throttle.Succeeded})
	pb.Done(throttle.Outcome{Status: throttle.Succeeded})
}

func TestConcurrencyRenewsOnlyWhileItHoldsSlots(t *testing.T) {
	srv := startRedis(t)
	m := NewConcurrency(srv.client(t), "renew", 2, time.Second)
	renewing := func() bool {
		m.leases.mu.Lock()
		defer m.leases.mu.Unlock()
		return m.leases.stop != nil
	}
	if renewing() {
		t.Fatal("renewing before any slot was taken")
	}
	p, err := m.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	q, err := m.ForKey("k").Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Done(throttle.Outcome{Status: throttle.Succeeded})
	if !renewing() {
		t.Fatal("not renewing while a key's slot is held")
	}
	q.Done(throttle.Outcome{Status: throttle.Succeeded})
	if renewing() {
		t.Fatal("still renewing with no slot held")
	}
	m.Close()
	if _, err := m.Acquire(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Acquire after Close = %v, want ErrClosed", err)
	}
}

// Close wakes a caller waiting in Acquire (here for a pause of an hour),
// which then returns ErrClosed.
func TestConcurrencyCloseWakesAWaitingAcquire(t *testing.T) {
	srv := startRedis(t)
	c := NewConcurrency(srv.client(t), "closed-while-waiting", 1, time.Second)
	p, err := c.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Done(throttle.Outcome{Status: throttle.PushedBack, Pause: time.Hour})
	done := make(chan error, 1)
	go func() {
		_, err := c.Acquire(ctx)
		done <- err
	}()
	for c.Stats().Waiting == 0 {
		time.Sleep(time.Millisecond) // until the caller waits
	}
	c.Close()
	checkWokenByClose(t, done)
}

// checkWokenByClose asserts that an Acquire that waited when its meter was
// closed returns ErrClosed on done, and soon.
func checkWokenByClose(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Acquire after Close = %v, want ErrClosed", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Acquire still waiting 20 s after Close")
	}
}

// Close waits for a Redis call in flight and gives back the slot it took:
// a caller waiting its turn behind that call returns ErrClosed at once,
// the caller of the call returns ErrClosed when the call ends, and Close
// returns only after that, with no slot left taken. The call's reply is
// lost (see lostReply) until the test lets it end.
func TestConcurrencyCloseWaitsForACallInFlight(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	m := NewConcurrency(client, "in-flight", 2, time.Second)
	lost := newLostReply(t, m.slotsKey(), context.DeadlineExceeded)
	client.AddHook(lost)
	first, second := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := m.Acquire(ctx)
		first <- err
	}()
	select {
	case <-lost.ran:
	case err := <-first:
		t.Fatalf("Acquire returned %v before its call hung", err)
	}
	go func() {
		_, err := m.Acquire(ctx)
		second <- err
	}()
	deadline := time.Now().Add(20 * time.Second)
	for m.Stats().Waiting < 2 { // until the second caller waits its turn
		if time.Now().After(deadline) {
			t.Fatal("the second caller is not waiting after 20 s")
		}
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() {
		m.Close()
		close(closed)
	}()
	checkWokenByClose(t, second)
	select {
	case <-closed:
		t.Fatal("Close returned while a call was in flight")
	default:
	}
	lost.let()
	checkWokenByClose(t, first)
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close still waiting 20 s after the call in flight ended")
	}
	if n := client.ZCard(ctx, m.slotsKey()).Val(); n != 0 {
		t.Errorf("%d slots still taken after Close returned, want the lost call's given back", n)
	}
}

// A connection that breaks after the acquire script ran, but before its
// reply came back, fails the call with an error that is no timeout: the
// slot the script took is given back all the same, so that it is not
// lost for a whole lease to every process.
func TestConcurrencyGivesBackTheSlotOfACallWhoseConnectionBroke(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	m := NewConcurrency(client, "broken", 1, time.Minute)
	lost := newLostReply(t, m.slotsKey(), io.EOF)
	lost.let() // the call fails at once
	client.AddHook(lost)
	if _, err := m.Acquire(ctx); !errors.Is(err, ErrUnavailable) || !errors.Is(err, io.EOF) {
		t.Fatalf("Acquire returned %v, want an error wrapping ErrUnavailable and io.EOF", err)
	}
	select {
	case <-lost.ran:
	default:
		t.Fatal("the acquire script never ran")
	}
	m.Close() // returns once the give-back is done
	if n := client.ZCard(ctx, m.slotsKey()).Val(); n != 0 {
		t.Errorf("%d slots still taken after Close, want the broken call's given back", n)
	}
}

// go-redis sends a call again when its connection broke, with the same
// holder id: the acquire script, run again for a holder whose slot the
// set holds already, grants that slot rather than counting it against
// its own holder.
func TestConcurrencyAcquireSentTwiceGetsTheSlotItTook(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	m := NewConcurrency(client, "twice", 1, time.Minute)
	defer m.Close()
	twice := &sentTwice{slots: m.slotsKey()}
	client.AddHook(twice)
	p, wait, err := m.TryAcquire(ctx)
	if err != nil || p == nil {
		t.Fatalf("TryAcquire = %v, wait %v, %v; want the one slot, which its first run took", p, wait, err)
	}
	if !twice.sent.Load() {
		t.Fatal("the acquire script was not sent twice")
	}
	if n := client.ZCard(ctx, m.slotsKey()).Val(); n != 1 {
		t.Errorf("%d slots taken, want 1", n)
	}
	p.Done(throttle.Outcome{Status: throttle.Succeeded})
	if n := client.ZCard(ctx, m.slotsKey()).Val(); n != 0 {
		t.Errorf("%d slots taken after Done, want none", n)
	}
}

// lostReply is a go-redis hook that loses the reply to the first script
// run on a sorted set of slots: the script runs in Redis, and then the
// call hangs until let, and fails with err, as if it had timed out or its
// connection had broken.
type lostReply struct {
	passHooks
	slots   string
	err     error
	ran     chan struct{} // closed once the script has run
	release chan struct{}
	first   sync.Once
	once    sync.Once
}

// newLostReply returns a lostReply on the sorted set slots that fails the
// call with err, let go when the test ends.
func newLostReply(t *testing.T, slots string, err error) *lostReply {
	h := &lostReply{slots: slots, err: err, ran: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(h.let)
	return h
}

func (h *lostReply) let() { h.once.Do(func() { close(h.release) }) }

func (h *lostReply) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil || !runsOn(cmd, h.slots) {
			return err
		}
		lose := false
		h.first.Do(func() { lose = true })
		if !lose {
			return nil
		}
		close(h.ran)
		<-h.release
		cmd.SetErr(h.err)
		return h.err
	}
}

// sentTwice is a go-redis hook that sends the first script run on a
// sorted set of slots twice, as go-redis does when the connection of the
// first breaks after Redis ran it; the caller gets the second reply.
type sentTwice struct {
	passHooks
	slots string
	sent  atomic.Bool
}

func (h *sentTwice) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil || !runsOn(cmd, h.slots) || !h.sent.CompareAndSwap(false, true) {
			return err
		}
		return next(ctx, cmd)
	}
}

// passHooks leaves dials and pipelines alone: a go-redis hook that acts
// on single commands embeds it.
type passHooks struct{}

func (passHooks) DialHook(next redis.DialHook) redis.DialHook { return next }

func (passHooks) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// runsOn says whether cmd runs a script whose first key is slots.
func runsOn(cmd redis.Cmder, slots string) bool {
	args := cmd.Args()
	return len(args) >= 4 && args[3] == slots && strings.HasPrefix(cmd.Name(), "eval")
}

package redismeter

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/throttle"
)

// forGood is a duration that means "for good": the largest there is.
const forGood = time.Duration(math.MaxInt64)

func TestMillisRoundsUpWithoutOverflow(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want int64
	}{
		{0, 1},
		{time.Nanosecond, 1},
		{time.Millisecond, 1},
		{time.Millisecond + 1, 2},
		{10 * time.Second, 10_000},
		{forGood, math.MaxInt64 / int64(time.Millisecond)},
	}
	for _, c := range cases {
		if got := millis(c.d); got != c.want {
			t.Errorf("millis(%d) = %d, want %d", c.d, got, c.want)
		}
	}
}

// A lease or a pause "for good" holds: it once overflowed into a
// millisecond, which let a second holder in and ended the pause at once.
func TestConcurrencyLeaseAndPauseForGood(t *testing.T) {
	srv := startRedis(t)
	a := NewConcurrency(srv.client(t), "forgood", 1, forGood)
	b := NewConcurrency(srv.client(t), "forgood", 1, forGood) // another process
	defer a.Close()
	defer b.Close()
	p, err := a.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if q, _, err := b.TryAcquire(ctx); q != nil || err != nil {
		t.Fatalf("a second slot under a limit of 1 = %v, %v; want none", q, err)
	}
	if ttl := srv.client(t).PTTL(ctx, a.slotsKey()).Val(); ttl < time.Hour {
		t.Errorf("the slots key expires in %v, want the lease's length", ttl)
	}
	p.Done(throttle.Outcome{Status: throttle.PushedBack, Pause: forGood})
	for _, m := range []*Concurrency{a, b} {
		if q, wait, err := m.TryAcquire(ctx); q != nil || err != nil || wait < time.Hour {
			t.Errorf("TryAcquire during a pause for good = %v, %v, %v; want a long wait", q, wait, err)
		}
	}
	if got := a.Stats().PausedUntil; !got.After(time.Now().Add(200 * 365 * 24 * time.Hour)) {
		t.Errorf("Stats().PausedUntil = %v, want the far future", got)
	}
}

func TestRatePauseForGood(t *testing.T) {
	srv := startRedis(t)
	a := NewRate(srv.client(t), "forgood", 1000, 10)
	b := NewRate(srv.client(t), "forgood", 1000, 10) // another process
	p, _, err := a.TryAcquire(ctx)
	if p == nil || err != nil {
		t.Fatalf("first token: %v, %v", p, err)
	}
	p.Done(throttle.Outcome{Status: throttle.PushedBack, Pause: forGood})
	for _, m := range []*Rate{a, b} {
		if q, wait, err := m.TryAcquire(ctx); q != nil || err != nil || wait < time.Hour {
			t.Errorf("TryAcquire during a pause for good = %v, %v, %v; want a long wait", q, wait, err)
		}
	}
}

// clusterTag is what Redis Cluster hashes of a key's name: what lies
// between the first '{' and the next '}', or the whole name when that is
// empty or missing.
func clusterTag(name string) string {
	i := strings.IndexByte(name, '{')
	if i < 0 {
		return name
	}
	j := strings.IndexByte(name[i+1:], '}')
	if j <= 0 {
		return name
	}
	return name[i+1 : i+1+j]
}

// A meter's keys share one Redis Cluster slot whatever its key, and no two
// keys get the same names.
func TestKeysShareOneClusterSlot(t *testing.T) {
	client := newClient("127.0.0.1:1") // never dialled
	defer client.Close()
	keys := []string{"k", "}", "}x", `\}x`, `\`, `\\`, "{", "a{b}c", "a}b", "{}", "x}"}
	names := map[string]string{}
	for _, key := range keys {
		c := NewConcurrency(client, key, 1, time.Second)
		r := NewRate(client, key, 1, 1)
		pairs := [][2]string{{c.slotsKey(), c.pauseKey()}, {r.bucketKey(), r.pauseKey()}}
		for _, p := range pairs {
			if a, b := clusterTag(p[0]), clusterTag(p[1]); a != b {
				t.Errorf("key %q: %q and %q hash as %q and %q, want one slot", key, p[0], p[1], a, b)
			}
			for _, name := range p {
				if other, ok := names[name]; ok && other != key {
					t.Errorf("keys %q and %q both use the name %q", other, key, name)
				}
				names[name] = key
			}
		}
		c.Close()
	}
}

// An Unused permit counts as started and finished: Redis spent its token,
// or held its slot.
func TestUnusedPermitCountsAsStartedAndFinished(t *testing.T) {
	srv := startRedis(t)
	r := NewRate(srv.client(t), "unused-stats", 100, 5)
	c := NewConcurrency(srv.client(t), "unused-stats", 5, time.Second)
	defer c.Close()
	for _, m := range []interface {
		throttle.Trier
		Stats() throttle.Stats
	}{r, c} {
		p, _, err := m.TryAcquire(ctx)
		if p == nil || err != nil {
			t.Fatalf("TryAcquire = %v, %v", p, err)
		}
		p.Done(throttle.Outcome{Status: throttle.Unused})
		if s := m.Stats(); s.Started != 1 || s.Finished != 1 || s.InFlight != 0 {
			t.Errorf("%T: Stats() = %+v, want one start, finished", m, s)
		}
	}
}

// The local meter of FallbackShare gets the share of very large values
// without overflow, and its own bad values name FallbackShare.
func TestFallbackShareOfLargeAndSmallValues(t *testing.T) {
	client := newClient("127.0.0.1:1") // never dialled
	defer client.Close()
	c := NewConcurrency(client, "k", math.MaxInt, time.Second, FallbackShare(1))
	if err := c.Err(); err != nil {
		t.Errorf("NewConcurrency(n MaxInt, FallbackShare(1)): %v, want no error", err)
	}
	c.Close()
	checkBad(t, NewRate(client, "k", 1, math.MaxInt, FallbackShare(1)), "FallbackShare")
	checkBad(t, NewRate(client, "k", 1e-6, 1, FallbackShare(0.5)), "FallbackShare")
}

// TryAcquire on a full local meter of FallbackShare says how long to wait,
// as it does when Redis answers, rather than 0.
func TestConcurrencyTryAcquireOnAFullLocalMeterSaysHowLong(t *testing.T) {
	client := newClient("127.0.0.1:1") // refused: Redis is down
	defer client.Close()
	m := NewConcurrency(client, "k", 2, time.Second, FallbackShare(0.5))
	defer m.Close()
	p, _, err := m.TryAcquire(ctx) // the one local slot
	if p == nil || err != nil {
		t.Fatalf("TryAcquire with Redis down under FallbackShare = %v, %v; want the local slot", p, err)
	}
	defer p.Done(throttle.Outcome{Status: throttle.Succeeded})
	q, wait, err := m.TryAcquire(ctx)
	if q != nil || err != nil || wait <= 0 {
		t.Errorf("TryAcquire on the full local meter = %v, %v, %v; want no permit and a wait above 0", q, wait, err)
	}
}

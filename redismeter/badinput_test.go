package redismeter

import (
	"errors"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/throttle"
)

// A nil context is a bad value, reported before Redis is asked, not a nil
// dereference.
func TestNilContextIsABadValue(t *testing.T) {
	client := newClient("127.0.0.1:1") // never dialled
	defer client.Close()
	c := NewConcurrency(client, "k", 1, time.Second)
	defer c.Close()
	for name, m := range map[string]throttle.Trier{"Rate": NewRate(client, "k", 1, 1), "Concurrency": c} {
		if p, err := m.Acquire(nil); p != nil || !errors.Is(err, throttle.ErrBadValue) {
			t.Errorf("%s: Acquire(nil) = %v, %v; want an error wrapping ErrBadValue", name, p, err)
		}
		if p, _, err := m.TryAcquire(nil); p != nil || !errors.Is(err, throttle.ErrBadValue) {
			t.Errorf("%s: TryAcquire(nil) = %v, %v; want an error wrapping ErrBadValue", name, p, err)
		}
	}
}

// A slot whose give-back failed is tried again for two leases, also when
// twice the lease does not fit in a time.Duration.
func TestRetryDeadlineOfAVeryLongLease(t *testing.T) {
	client := newClient("127.0.0.1:1") // never dialled
	defer client.Close()
	c := NewConcurrency(client, "k", 1, 200*365*24*time.Hour)
	defer c.Close()
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	now := c.cfg.clock.Now()
	c.leases.retry("slots:{k}", "id")
	c.leases.mu.Lock()
	until := c.leases.stale["slots:{k}"]["id"].until
	c.leases.mu.Unlock()
	if !until.After(now.Add(200 * 365 * 24 * time.Hour)) {
		t.Errorf("the give-back is tried until %v, before the lease (from %v) is over", until, now)
	}
}

package redismeter

import (
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/trimeter-go/trimeter/throttle"
)

// A renewal in flight while a task's Done gives its slot back, where
// the give-back never reaches Redis (the network held it) and the meter
// is closed before the renewer can try again: the renewal, which Redis
// runs after the Done, must not leave the given-back slot taken for a
// lease.
func TestARenewalInFlightAtDoneAndCloseLeavesNoSlot(t *testing.T) {
	srv := startRedis(t)
	px := newProxy(t, srv.addr())
	m := NewConcurrency(px.client(t), "inflight-close", 1, time.Minute, CallTimeout(2*time.Second), WithClock(clockwork.NewFakeClock()))
	defer m.Close()
	p, err := m.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	renewal := px.holdNext()
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		m.leases.renewOnce()
	}()
	<-renewal.taken
	release := px.holdNext() // never let through before the checks
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Done(throttle.Outcome{Status: throttle.Succeeded})
	}()
	<-release.taken
	m.Close()
	renewal.letThrough(t) // Redis runs the renewal after the Done
	<-renewed
	<-done
	if n := srv.client(t).ZCard(ctx, m.slotsKey()).Val(); n != 0 {
		t.Errorf("%d slots taken after Done and Close, want 0: the renewal in flight added it back", n)
	}
}

// A permit of the local meter of FallbackShare, counted in Redis by a
// renewal once Redis answers again, is given back in Redis by its Done
// and recorded, so that the next renewal does not add it back.
func TestACountedPermitsDoneGivesItsSlotBackForGood(t *testing.T) {
	// The meter asks Redis again: it is past the second after the failure.
	m, p, client := countedLocalTask(t, "counted", 2, 0.5, 2*time.Second)
	p.Done(throttle.Outcome{Status: throttle.Succeeded})
	if n := client.ZCard(ctx, m.slotsKey()).Val(); n != 0 {
		t.Fatalf("%d slots in Redis after Done, want 0", n)
	}
	cp, ok := p.(*countedPermit)
	if !ok {
		t.Fatalf("permit %T, want a counted permit", p)
	}
	if err := client.ZScore(ctx, goneKey(m.slotsKey()), cp.id).Err(); err != nil {
		t.Errorf("no gone record of the counted permit after Done: %v", err)
	}
	m.leases.renewOnce()
	if n := client.ZCard(ctx, m.slotsKey()).Val(); n != 0 {
		t.Errorf("%d slots in Redis after a renewal, want 0", n)
	}
}

// The release script keeps the longer life of a holder's record when it
// records the holder again with a shorter one.
func TestReleaseScriptKeepsTheLongerRecord(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	keys := scriptKeys("slots:{twice}")
	if err := releaseScript.Run(ctx, client, keys, 0, "a", (20 * time.Minute).Milliseconds()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := releaseScript.Run(ctx, client, keys, 0, "a", 2000).Err(); err != nil {
		t.Fatal(err)
	}
	if ttl := client.PTTL(ctx, keys[2]).Val(); ttl < 19*time.Minute {
		t.Errorf("the record of a holder given back for 20 min and then for 2 s expires in %v, want about 20 min", ttl)
	}
}

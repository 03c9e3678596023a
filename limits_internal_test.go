package trimeter

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/throttle"
)

// watchdog is how long these tests wait, in real time, for what must
// happen at once, before they fail instead of hanging.
const watchdog = 20 * time.Second

// A limit that changes while the run holds mu is acted on by a goroutine
// that waits for mu (limitsChanged). The run's end waits for that
// goroutine, and from then on a change starts none.
func TestTheRunsEndWaitsForTheGoroutineThatActsOnAChangedLimit(t *testing.T) {
	fn := func(context.Context, int) (struct{}, error) { return struct{}{}, nil }
	cfg := newConfig([]Option{PerKey(func(v int) int { return v }, WithMeter(keyedConcurrency{throttle.NewConcurrency(1)}))})
	key, err := resolveKey[int](cfg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := newEngine(context.Background(), fn, key, cfg, discard)
	if err != nil {
		t.Fatal(err)
	}
	e.begin(plainInputs(func(func(int) bool) {}))
	if e.stopWatch == nil {
		t.Fatal("the run does not watch for changed limits")
	}

	e.mu.Lock()
	e.limitsChanged() // mu is taken: a goroutine waits for it
	if n := goroutinesIn("limitsChanged.func"); n != 1 {
		e.mu.Unlock()
		t.Fatalf("%d goroutines wait to act on the change, want 1", n)
	}
	e.mu.Unlock()
	e.shutdown()
	if e.limitsWaking.Load() {
		t.Error("the run ended before the goroutine that acts on the change had run")
	}

	e.mu.Lock()
	e.limitsChanged() // after the end
	deadline := time.Now().Add(watchdog)
	for goroutinesIn("limitsChanged.func") > 0 { // the one before may still be on its way out
		if time.Now().After(deadline) {
			e.mu.Unlock()
			t.Fatalf("a goroutine waits to act on a change made after the run ended")
		}
		runtime.Gosched()
	}
	e.mu.Unlock()
}

// keyedConcurrency is a family of throttle.Concurrency meters, one per key.
type keyedConcurrency struct{ *throttle.Concurrency }

func (keyedConcurrency) ForKey(string) throttle.Meter { return throttle.NewConcurrency(1) }

// goroutinesIn counts the goroutines with fn in their stacks.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte(fn)) {
			n++
		}
	}
	return n
}

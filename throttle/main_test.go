package throttle_test

import (
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// patience is how long a test waits, in real time, for what should
// happen at once, before it fails instead of hanging.
const patience = 10 * time.Second

// settle waits until cond holds, yielding in between; if it has not held
// after ten seconds of real time, the test fails instead of hanging.
func settle(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		runtime.Gosched()
	}
}

func runtimeYield() { runtime.Gosched() }

package changes_test

import (
	"testing"

	"github.com/trimeter-go/trimeter/internal/changes"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNotifyCallsEachWatcherUntilItStops(t *testing.T) {
	var a, b int
	stopA := changes.Watch(func() { a++ })
	stopB := changes.Watch(func() { b++ })
	changes.Notify()
	stopA()
	changes.Notify()
	stopB()
	changes.Notify()
	if a != 1 || b != 2 {
		t.Errorf("watchers called %d and %d times, want 1 and 2", a, b)
	}
}

func TestAWatcherMayStopItselfWhenCalled(t *testing.T) {
	calls := 0
	var stop func()
	stop = changes.Watch(func() {
		calls++
		stop() // Notify holds no lock of the package while it calls f
	})
	changes.Notify()
	changes.Notify()
	if calls != 1 {
		t.Errorf("called %d times, want 1", calls)
	}
}

package changes_test

import (
	"sync"
	"sync/atomic"
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

// Watchers come and go while changes are notified, from many goroutines:
// a watcher that was watching throughout hears every notice.
func TestWatchersComeAndGoWhileChangesAreNotified(t *testing.T) {
	var heard atomic.Int64
	stop := changes.Watch(func() { heard.Add(1) })
	defer stop()
	const notifiers, notices = 4, 200
	var wg sync.WaitGroup
	for range notifiers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range notices {
				changes.Notify()
			}
		}()
		go func() {
			defer wg.Done()
			for range notices {
				changes.Watch(func() {})()
			}
		}()
	}
	wg.Wait()
	if got := heard.Load(); got != notifiers*notices {
		t.Errorf("the watcher heard %d notices, want %d", got, notifiers*notices)
	}
}

// A watcher stopped while a Notify calls another watcher is not called by
// that Notify once stop has returned. Notify visits the watchers in no set
// order: the test tries until the blocking one comes first.
func TestAStoppedWatcherIsNotCalledByANotifyUnderWay(t *testing.T) {
	for range 200 {
		var stopped, late, bCalled atomic.Bool
		entered, release := make(chan bool, 1), make(chan struct{})
		stopA := changes.Watch(func() {
			entered <- !bCalled.Load()
			<-release
		})
		stopB := changes.Watch(func() {
			bCalled.Store(true)
			late.Store(stopped.Load())
		})
		done := make(chan struct{})
		go func() { changes.Notify(); close(done) }()
		aFirst := <-entered
		stopB()
		stopped.Store(true)
		close(release)
		<-done
		stopA()
		if aFirst {
			if late.Load() {
				t.Fatal("a watcher was called after its stop had returned")
			}
			return
		}
	}
	t.Fatal("in 200 notices the blocking watcher never came first")
}

package latest_test

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trimeter-go/trimeter/internal/latest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRaiseKeepsTheLater(t *testing.T) {
	var l latest.Time
	if _, ok := l.Load(); ok {
		t.Fatal("the zero Time holds an instant")
	}
	later, sooner := time.Unix(100, 0), time.Unix(10, 0)
	l.Raise(later)
	l.Raise(sooner)
	if got, ok := l.Load(); !ok || !got.Equal(later) {
		t.Errorf("Load() = %v, %v; want %v, true", got, ok, later)
	}
	l.Clear()
	if _, ok := l.Load(); ok {
		t.Error("Clear left an instant")
	}
}

func TestClearIfDropsOnlyThatInstant(t *testing.T) {
	var l latest.Time
	first, second := time.Unix(10, 0), time.Unix(100, 0)
	l.Raise(first)
	l.Raise(second)
	l.ClearIf(first) // a later one is held: it stays
	if got, ok := l.Load(); !ok || !got.Equal(second) {
		t.Fatalf("Load() = %v, %v after ClearIf of an earlier instant; want %v, true", got, ok, second)
	}
	l.ClearIf(time.Unix(100, 0).In(time.FixedZone("elsewhere", 3600))) // the same instant
	if got, ok := l.Load(); ok {
		t.Errorf("Load() = %v, true after ClearIf of the instant held; want none", got)
	}
	l.ClearIf(second) // nothing held: nothing to do
	if _, ok := l.Load(); ok {
		t.Error("ClearIf on an empty Time left an instant")
	}
}

func TestAnyInstantWorks(t *testing.T) {
	for _, at := range []time.Time{
		{}, // year 1
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Unix(0, 0),
		time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		var l latest.Time
		l.Raise(at)
		if got, ok := l.Load(); !ok || !got.Equal(at) {
			t.Errorf("Raise(%v): Load() = %v, %v", at, got, ok)
		}
		l.Raise(at.Add(-time.Hour))
		if got, _ := l.Load(); !got.Equal(at) {
			t.Errorf("Raise(%v) then an hour before: Load() = %v", at, got)
		}
	}
}

func TestConcurrentRaisesKeepTheLatest(t *testing.T) {
	var l latest.Time
	base := time.Unix(1_700_000_000, 0)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 1000 {
				l.Raise(base.Add(time.Duration(j*8+i) * time.Millisecond))
			}
		}()
	}
	wg.Wait()
	if got, _ := l.Load(); !got.Equal(base.Add(7999 * time.Millisecond)) {
		t.Errorf("Load() = %v, want the latest raise", got)
	}
}

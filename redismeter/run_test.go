package redismeter

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter"
)

// count yields 0, 1, 2, ... up to n, or forever when n is negative.
func count(n int) func(yield func(int) bool) {
	return func(yield func(int) bool) {
		for i := 0; n < 0 || i < n; i++ {
			if !yield(i) {
				return
			}
		}
	}
}

func TestRunEndsWithTheRedisErrorWhenRedisStops(t *testing.T) {
	srv := startRedis(t)
	m := NewRate(srv.client(t), "run", 1000, 10, CallTimeout(200*time.Millisecond))
	var stopping sync.Once
	var started atomic.Int64
	err := trimeter.RunOnEach(ctx, count(-1), func(ctx context.Context, i int) error {
		if started.Add(1) == 20 {
			stopping.Do(srv.stop)
		}
		return nil
	}, trimeter.MaxAtOnce(4), trimeter.WithMeter(m))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("RunOnEach with Redis stopped mid-run = %v, want ErrUnavailable", err)
	}
	t.Logf("%d tasks, then: %v", started.Load(), err)
}

func TestPerKeyGivesEachKeyItsRedisSlots(t *testing.T) {
	srv := startRedis(t)
	m := NewConcurrency(srv.client(t), "perkey", 1, time.Second)
	defer m.Close()
	var mu sync.Mutex
	running := map[int]int{}
	peak := 0
	err := trimeter.RunOnEach(ctx, count(60), func(ctx context.Context, i int) error {
		mu.Lock()
		running[i%3]++
		peak = max(peak, running[i%3])
		mu.Unlock()
		time.Sleep(time.Millisecond) // some work while the slot is held
		mu.Lock()
		running[i%3]--
		mu.Unlock()
		return nil
	}, trimeter.MaxAtOnce(6), trimeter.PerKey(func(i int) int { return i % 3 }, trimeter.WithMeter(m)))
	if err != nil {
		t.Fatal(err)
	}
	if peak != 1 {
		t.Errorf("peak tasks of one key at once = %d, want 1", peak)
	}
	if s := m.Stats(); s.Started != 60 || s.InFlight != 0 {
		t.Errorf("Stats = %+v, want 60 started, none in flight", s)
	}
}

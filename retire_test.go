package trimeter_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/internal/testclock"
)

// A run without MaxAtOnce grows its pool to as many workers as tasks wait,
// and once they are done (with none running) keeps only KeptIdle of them
// waiting for more: the workers that went to wait while the others still
// ran end too. When work comes back, the pool grows again.
func TestIdleWorkersEndWithoutALimit(t *testing.T) {
	const n = 300
	cases := []struct {
		path string
		opts []trimeter.Option
		// the run's goroutines besides its idle workers while its input
		// blocks: RunOnEach's caller, which is the feeder on the fed path;
		// on the starter's path, the caller waits, and the starter pulls
		// through iter.Pull's coroutine
		others int
	}{
		{"fed", nil, 1},
		{"starter", []trimeter.Option{trimeter.MaxPerSecond(1e6), trimeter.MaxBurst(4 * n), trimeter.WithClock(testclock.New())}, 3},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			if route := trimeter.RouteOf[int, struct{}](false, c.opts...); route != c.path {
				t.Fatalf("the run takes the %s path, want the %s one", route, c.path)
			}
			base := runtime.NumGoroutine()
			started := make(chan int, 2*n)
			more, first, second := make(chan struct{}), make(chan struct{}), make(chan struct{})
			inputs := func(yield func(int) bool) {
				for i := range 2 * n {
					if i == n {
						<-more
					}
					if !yield(i) {
						return
					}
				}
			}
			done := make(chan error, 1)
			go func() {
				done <- trimeter.RunOnEach(context.Background(), inputs, func(_ context.Context, v int) error {
					started <- v
					if v < n {
						<-first
					} else {
						<-second
					}
					return nil
				}, c.opts...)
			}()
			for range n { // every one at once: there is no limit
				<-started
			}
			close(first)
			want, got := base+c.others+trimeter.KeptIdle, 0
			eventually(t, func() bool { got = runtime.NumGoroutine(); return got <= want },
				fmt.Sprintf("%d goroutines at most, with the run's tasks done and its input waiting", want))
			if got > want {
				t.Errorf("%d goroutines at the last look: %d more than the run keeps idle", got, got-want)
			}
			close(more)
			for range n { // the pool grows again, to every one at once
				<-started
			}
			close(second)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

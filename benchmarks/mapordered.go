package benchmarks

import (
	"context"
	"iter"
	"sync"
	"sync/atomic"

	"github.com/sourcegraph/conc/stream"
	"github.com/trimeter-go/trimeter"
)

// OrderedMaps holds every map implementation that yields results in input
// order while the work goes on. All of them need a limit. conc's stream
// calls yield from its own goroutine (one at a time, in order).
var OrderedMaps = map[string]Map{
	Trimeter:    trimeterOrderedMap,
	HandWritten: promisesMap,
	Conc:        concStreamMap,
}

// trimeterOrderedMap gives AMap the window of its peers, which hold n+1
// and n+2 inputs pulled and not yet handed to the consumer, whether their
// results are finished or not: promisesMap the n promises queued in order
// and the one its producer holds; conc its queue of n+1 callbacks and the
// one its producer holds while it waits for room. Under Ordered,
// MaxAtOnce(n) with BufferSize(2) holds n+2, as conc does.
func trimeterOrderedMap(in iter.Seq[int], n int, work Work, yield func(int) bool) error {
	return rangeAMap(in, work, yield, atOnce(n, trimeter.Ordered(), trimeter.BufferSize(2))...)
}

// promise is one input on its way through promisesMap: its value and the
// one-slot channel its result goes to.
type promise struct {
	v   int
	out chan int
}

// promisesMap keeps results in order with a ring of n+1 one-slot channels
// allocated once: the producer queues each input's channel in order and
// hands the input to one of n workers; the consumer reads the channels in
// queue order. The queue holds n channels, so a channel is reused only
// after the consumer has read it.
func promisesMap(in iter.Seq[int], n int, work Work, yield func(int) bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	ring := make([]chan int, n+1)
	for i := range ring {
		ring[i] = make(chan int, 1)
	}
	order := make(chan chan int, n)
	jobs := make(chan promise, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for range n {
		go func() {
			defer wg.Done()
			for p := range jobs {
				select {
				case p.out <- work(p.v):
				case <-ctx.Done():
				}
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(jobs)
		i := 0
		for v := range in {
			if ctx.Err() != nil {
				return
			}
			out := ring[i]
			i = (i + 1) % len(ring)
			select {
			case order <- out:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- promise{v, out}:
			case <-ctx.Done():
				return
			}
		}
	}()
	consumeInOrder(ctx, order, yield, cancel)
	wg.Wait()
	return nil
}

// consumeInOrder reads each queued channel's result and hands it to
// yield, until order is closed or yield returns false.
func consumeInOrder(ctx context.Context, order <-chan chan int, yield func(int) bool, cancel context.CancelFunc) {
	defer cancel()
	for out := range order {
		select {
		case r := <-out:
			if yield(r) {
				continue
			}
		case <-ctx.Done():
		}
		cancel()
		for range order {
		}
		return
	}
}

// concStreamMap runs the inputs in a conc stream, whose callbacks run in
// input order on the stream's own goroutine.
func concStreamMap(in iter.Seq[int], n int, work Work, yield func(int) bool) error {
	s := stream.New().WithMaxGoroutines(n)
	var stopped atomic.Bool
	for v := range in {
		if stopped.Load() {
			break
		}
		s.Go(func() stream.Callback {
			r := work(v)
			return func() {
				if !stopped.Load() && !yield(r) {
					stopped.Store(true)
				}
			}
		})
	}
	s.Wait()
	return nil
}

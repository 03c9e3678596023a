package benchmarks

import (
	"context"
	"iter"
	"sync"

	"github.com/alitto/pond/v2"
	"github.com/trimeter-go/trimeter"
	"golang.org/x/sync/errgroup"
)

// Maps holds every map implementation that yields results as they finish.
// The hand-written pool needs a limit.
var Maps = map[string]Map{
	Trimeter:    trimeterMap,
	HandWritten: handMap,
	Pond:        pondMap(0),
	Errgroup:    errgroupMap,
}

// BoundedMaps is Maps with pond given a bounded queue (as long as the
// limit), so that an infinite input cannot fill the heap.
var BoundedMaps = map[string]Map{
	Trimeter:    trimeterMap,
	HandWritten: handMap,
	Pond:        pondMap(-1),
	Errgroup:    errgroupMap,
}

// trimeterMap gives AMap the buffering its peers have: their results go
// through a channel of resultsCap(n), so up to that many finished results
// wait for the consumer without stopping the workers, as BufferSize lets
// them.
func trimeterMap(in iter.Seq[int], n int, work Work, yield func(int) bool) error {
	if n == 0 {
		return rangeAMap(in, work, yield)
	}
	return rangeAMap(in, work, yield, atOnce(n, trimeter.BufferSize(resultsCap(n)))...)
}

func rangeAMap(in iter.Seq[int], work Work, yield func(int) bool, opts ...trimeter.Option) error {
	fn := func(_ context.Context, v int) (int, error) { return work(v), nil }
	for r, err := range trimeter.AMap(context.Background(), in, fn, opts...) {
		if err != nil {
			return err
		}
		if !yield(r) {
			break
		}
	}
	return nil
}

// handMap is a channel worker pool whose workers send results on a
// buffered channel that the consumer reads.
func handMap(in iter.Seq[int], n int, work Work, yield func(int) bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	jobs := make(chan int, n)
	results := make(chan int, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for range n {
		go func() {
			defer wg.Done()
			for v := range jobs {
				select {
				case results <- work(v):
				case <-ctx.Done():
				}
			}
		}()
	}
	go func() {
		feed(ctx, in, jobs)
		close(jobs)
		wg.Wait()
		close(results)
	}()
	drain(results, yield, cancel)
	return nil
}

// pondMap returns a Map over a pond pool whose tasks send results on a
// channel. queue is pond's queue size: 0 for pond's default (no bound), -1
// for a queue as long as the limit.
func pondMap(queue int) Map {
	return func(in iter.Seq[int], n int, work Work, yield func(int) bool) error {
		ctx, cancel := context.WithCancel(context.Background())
		var opts []pond.Option
		if queue < 0 {
			opts = append(opts, pond.WithQueueSize(resultsCap(n)))
		}
		p := pond.NewPool(n, opts...)
		results := make(chan int, resultsCap(n))
		task := func(v int) func() {
			return func() {
				select {
				case results <- work(v):
				case <-ctx.Done():
				}
			}
		}
		go func() {
			for v := range in {
				if ctx.Err() != nil || p.Go(task(v)) != nil {
					break
				}
			}
			p.StopAndWait()
			close(results)
		}()
		drain(results, yield, cancel)
		return nil
	}
}

func errgroupMap(in iter.Seq[int], n int, work Work, yield func(int) bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	var g errgroup.Group
	if n > 0 {
		g.SetLimit(n)
	}
	results := make(chan int, resultsCap(n))
	go func() {
		for v := range in {
			if ctx.Err() != nil {
				break
			}
			g.Go(func() error {
				select {
				case results <- work(v):
				case <-ctx.Done():
				}
				return nil
			})
		}
		g.Wait()
		close(results)
	}()
	drain(results, yield, cancel)
	return nil
}

package benchmarks

import (
	"context"
	"iter"
	"sync"
	"time"

	"github.com/alitto/pond/v2"
	"github.com/panjf2000/ants/v2"
	"github.com/sourcegraph/conc/pool"
	"github.com/trimeter-go/trimeter"
	"golang.org/x/sync/errgroup"
)

// ForEaches holds every for-each implementation by name. The hand-written
// pool needs a limit; goroutine-per-item has none.
var ForEaches = map[string]ForEach{
	Trimeter:    trimeterForEach,
	Errgroup:    errgroupForEach,
	HandWritten: handForEach,
	Conc:        concForEach,
	Pond:        pondForEach,
	Ants:        antsForEach,
	Goroutines:  goroutinesForEach,
}

func trimeterForEach(in iter.Seq[int], n int, work Work) error {
	fn := func(_ context.Context, v int) error {
		work(v)
		return nil
	}
	return trimeter.RunOnEach(context.Background(), in, fn, atOnce(n)...)
}

func errgroupForEach(in iter.Seq[int], n int, work Work) error {
	var g errgroup.Group
	if n > 0 {
		g.SetLimit(n)
	}
	for v := range in {
		g.Go(func() error {
			work(v)
			return nil
		})
	}
	return g.Wait()
}

// handForEach is the channel worker pool people write by hand: n
// goroutines reading a buffered channel.
func handForEach(in iter.Seq[int], n int, work Work) error {
	return handPool(in, n, n, work)
}

// handForEachUnbuffered is the same pool with an unbuffered channel: like
// trimeter, it pulls an input only once a worker is free to take it.
func handForEachUnbuffered(in iter.Seq[int], n int, work Work) error {
	return handPool(in, n, 0, work)
}

// handPool runs n goroutines that read a channel buffered to size.
func handPool(in iter.Seq[int], n, size int, work Work) error {
	jobs := make(chan int, size)
	var wg sync.WaitGroup
	wg.Add(n)
	for range n {
		go func() {
			defer wg.Done()
			for v := range jobs {
				work(v)
			}
		}()
	}
	for v := range in {
		jobs <- v
	}
	close(jobs)
	wg.Wait()
	return nil
}

func concForEach(in iter.Seq[int], n int, work Work) error {
	p := pool.New()
	if n > 0 {
		p = p.WithMaxGoroutines(n)
	}
	for v := range in {
		p.Go(func() { work(v) })
	}
	p.Wait()
	return nil
}

// pondForEach uses pond's defaults: its queue has no bound, so the loop
// never waits for a worker.
func pondForEach(in iter.Seq[int], n int, work Work) error {
	p := pond.NewPool(n)
	for v := range in {
		if err := p.Go(func() { work(v) }); err != nil {
			p.StopAndWait()
			return err
		}
	}
	p.StopAndWait()
	return nil
}

// antsReleaseWait bounds how long a run waits for an ants pool's
// goroutines to exit.
const antsReleaseWait = 5 * time.Second

func antsForEach(in iter.Seq[int], n int, work Work) error {
	size := n
	if n == 0 {
		size = -1 // ants: no limit
	}
	p, err := ants.NewPool(size)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for v := range in {
		wg.Add(1)
		err = p.Submit(func() {
			defer wg.Done()
			work(v)
		})
		if err != nil {
			wg.Done()
			break
		}
	}
	wg.Wait()
	if rerr := p.ReleaseTimeout(antsReleaseWait); err == nil {
		err = rerr
	}
	return err
}

// goroutinesForEach starts one goroutine per input, without a limit.
func goroutinesForEach(in iter.Seq[int], _ int, work Work) error {
	var wg sync.WaitGroup
	for v := range in {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(v)
		}()
	}
	wg.Wait()
	return nil
}

package benchmarks

import (
	"context"
	"iter"

	"github.com/trimeter-go/trimeter"
)

// Work is the task every implementation runs once per input: it takes the
// input and returns the result that goes to the consumer.
type Work func(v int) int

// ForEach runs work once for every value of in, with at most n calls at
// once; n == 0 means no limit. It returns when every call has returned.
type ForEach func(in iter.Seq[int], n int, work Work) error

// Map runs work once for every value of in, with at most n calls at once
// (n == 0: no limit), and hands every result to yield, one at a time.
// When yield returns false, Map stops pulling inputs and returns once the
// calls it started have returned.
type Map func(in iter.Seq[int], n int, work Work, yield func(int) bool) error

// The names of the implementations, as the table's columns show them.
const (
	Trimeter    = "trimeter"
	Errgroup    = "errgroup"
	HandWritten = "hand-written"
	Conc        = "conc"
	Pond        = "pond"
	Ants        = "ants"
	Goroutines  = "go+WaitGroup"
)

// Peers lists the columns of the table in order, trimeter first.
var Peers = []string{Trimeter, Errgroup, HandWritten, Conc, Pond, Ants, Goroutines}

// atOnce returns the trimeter option for a limit of n, none for n == 0.
func atOnce(n int, more ...trimeter.Option) []trimeter.Option {
	if n == 0 {
		return more
	}
	return append([]trimeter.Option{trimeter.MaxAtOnce(n)}, more...)
}

// resultsCap is the capacity of a results channel for a limit of n.
func resultsCap(n int) int {
	if n == 0 {
		return 64
	}
	return n
}

// feed sends the values of in to jobs until in ends or ctx is done.
func feed(ctx context.Context, in iter.Seq[int], jobs chan<- int) {
	for v := range in {
		select {
		case jobs <- v:
		case <-ctx.Done():
			return
		}
	}
}

// drain hands each value of results to yield in the calling goroutine.
// When yield returns false it cancels the producers and reads results to
// the end, so that they can finish. results must be closed once every
// producer has returned.
func drain(results <-chan int, yield func(int) bool, cancel context.CancelFunc) {
	defer cancel()
	for r := range results {
		if !yield(r) {
			cancel()
			for range results {
			}
			return
		}
	}
}

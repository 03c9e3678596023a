package benchmarks

import (
	"fmt"
	"sync/atomic"
	"time"
)

// A Case is one implementation of one workload, ready to run.
type Case struct {
	Shape string // the table's row
	Peer  string // the table's column
	// Run processes items inputs. For sleeping work it returns the ideal
	// elapsed time: the sleeps' measured total divided by the limit.
	Run func(items int) (ideal time.Duration, err error)
}

// Limits are the values of n that the no-op workloads run at; 0 is no
// limit.
var Limits = []int{1, 8, 64, 0}

func limitName(n int) string {
	if n == 0 {
		return "unbounded"
	}
	return fmt.Sprintf("n=%d", n)
}

// noop is the work of the no-op workloads.
func noop(v int) int { return v }

// NoOpCases lists every workload with no-op work: for-each, map in
// completion order and map in input order, at every limit, for every
// implementation that has that shape.
func NoOpCases() []Case {
	var cs []Case
	for _, n := range Limits {
		shape := "for-each " + limitName(n)
		for _, peer := range Peers {
			if (peer == HandWritten && n == 0) || (peer == Goroutines && n != 0) {
				continue
			}
			cs = append(cs, forEachCase(shape, peer, ForEaches[peer], n))
		}
	}
	// The same rows against the hand-written pool with an unbuffered
	// channel, which reads no further ahead of the work than trimeter.
	for _, n := range Limits[:3] {
		shape := "for-each " + limitName(n) + ", no read-ahead"
		cs = append(cs,
			forEachCase(shape, Trimeter, ForEaches[Trimeter], n),
			forEachCase(shape, HandWritten, handForEachUnbuffered, n))
	}
	for _, n := range Limits {
		shape := "map, as finished, " + limitName(n)
		for _, peer := range Peers {
			m, ok := Maps[peer]
			if ok && !(peer == HandWritten && n == 0) {
				cs = append(cs, mapCase(shape, peer, m, n))
			}
		}
	}
	for _, n := range Limits[:3] {
		shape := "map, in order, " + limitName(n)
		for _, peer := range Peers {
			if m, ok := OrderedMaps[peer]; ok {
				cs = append(cs, mapCase(shape, peer, m, n))
			}
		}
	}
	return cs
}

func forEachCase(shape, peer string, f ForEach, n int) Case {
	return Case{Shape: shape, Peer: peer, Run: func(items int) (time.Duration, error) {
		return 0, f(Count(items), n, noop)
	}}
}

func mapCase(shape, peer string, m Map, n int) Case {
	return Case{Shape: shape, Peer: peer, Run: func(items int) (time.Duration, error) {
		return 0, m(Count(items), n, noop, func(int) bool { return true })
	}}
}

// IOLimit is how many sleeping tasks run at once in the I/O workload.
const IOLimit = 64

// IOCases lists the I/O-shaped workload: tasks that sleep 1 ms, 64 at
// once, for every for-each implementation that takes a limit.
func IOCases() []Case {
	var cs []Case
	for _, peer := range Peers {
		if peer == Goroutines {
			continue
		}
		f := ForEaches[peer]
		cs = append(cs, Case{Shape: "I/O: 1 ms sleeps, n=64", Peer: peer, Run: func(items int) (time.Duration, error) {
			var slept atomic.Int64
			work := func(v int) int {
				t := time.Now()
				time.Sleep(time.Millisecond)
				slept.Add(int64(time.Since(t)))
				return v
			}
			err := f(Count(items), IOLimit, work)
			return time.Duration(slept.Load() / IOLimit), err
		}})
	}
	return cs
}

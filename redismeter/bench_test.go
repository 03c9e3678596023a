package redismeter

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/throttle"
)

// benchRate is far above what Redis can grant, so that the benchmarks
// measure the cost of a start, not the limit.
const (
	benchRate  = 1e7
	benchBurst = 1000
)

// BenchmarkRate measures starts per second through one Rate on a Redis
// on loopback: from this process alone, and from this process and three
// others that hammer the same key at the same time. The starts/s metric is
// the total over all processes.
func BenchmarkRate(b *testing.B) {
	srv := startRedis(b)
	for _, procs := range []int{1, 4} {
		b.Run(fmt.Sprintf("processes=%d", procs), func(b *testing.B) {
			benchProcesses(b, srv, procs)
		})
	}
}

func benchProcesses(b *testing.B, srv *server, procs int) {
	key := fmt.Sprintf("bench%d", procs)
	others := make([]*child, procs-1)
	for i := range others {
		others[i] = spawn(b, "bench", addrEnv+"="+srv.addr(), keyEnv+"="+key)
		if l, err := others[i].line(); err != nil || l != "ready" {
			b.Fatalf("child: %q, %v", l, err)
		}
	}
	m := NewRate(srv.client(b), key, benchRate, benchBurst)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(32)
	for _, o := range others {
		fmt.Fprintln(o.in, "go")
	}
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := m.Acquire(ctx)
			if err != nil {
				b.Error(err)
				return
			}
			p.Done(throttle.Outcome{Status: throttle.Succeeded})
		}
	})
	b.StopTimer()
	total := float64(b.N) / time.Since(start).Seconds()
	for _, o := range others {
		o.in.Close()
		l, err := o.line()
		var n int64
		var d time.Duration
		if err != nil || !fmtScan(l, "%d %d", &n, &d) {
			b.Fatalf("child: %q, %v", l, err)
		}
		total += float64(n) / d.Seconds()
	}
	b.ReportMetric(total, "starts/s")
}

// benchChild starts tasks through the benchmark's Rate, from 64
// goroutines, from the parent's "go" until it closes stdin, then prints
// how many it started and in how long.
func benchChild() error {
	client := childClient()
	defer client.Close()
	m := NewRate(client, os.Getenv(keyEnv), benchRate, benchBurst)
	cmds := commands()
	fmt.Println("ready")
	if <-cmds != "go" {
		return fmt.Errorf("no go")
	}
	ctx, cancel := untilClosed(cmds)
	defer cancel()
	start := time.Now()
	var mu sync.Mutex
	var n int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine int64
			for {
				p, err := m.Acquire(ctx)
				if err != nil {
					break
				}
				p.Done(throttle.Outcome{Status: throttle.Succeeded})
				mine++
			}
			mu.Lock()
			n += mine
			mu.Unlock()
		}()
	}
	wg.Wait()
	fmt.Printf("%d %d\n", n, time.Since(start))
	return nil
}

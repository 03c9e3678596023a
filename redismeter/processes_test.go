package redismeter

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/trimeter-go/trimeter/throttle"
)

const (
	sharedRate   = 500
	sharedBurst  = 100 // 200 ms of tokens: see TestRateHoldsAcrossProcesses
	sharedProcs  = 4
	sharedWorker = 64
	sharedRun    = 3 * time.Second
)

// TestRateHoldsAcrossProcesses runs four processes of 64 workers each on
// one NewRate(500, 100) for three seconds, and checks every window of the
// grants they got together against burst + rate·t. Each grant is dated by
// the interval between sending its Redis call and reading the reply, on
// the one clock every process and Redis share; a window counts only the
// grants whose whole interval lies inside it, so no tolerance is needed.
//
// It also checks that the processes get at least 95% of the tokens. The
// bucket holds 200 ms of them, so that a spell in which the machine runs
// none of the processes (other jobs on a busy host) costs no throughput
// unless it is longer than that: with a bucket of 10 (20 ms), a loaded
// machine failed the check while the meter did nothing wrong.
func TestRateHoldsAcrossProcesses(t *testing.T) {
	srv := startRedis(t)
	kids := make([]*child, sharedProcs)
	for i := range kids {
		kids[i] = spawn(t, "rate", addrEnv+"="+srv.addr(), keyEnv+"=shared")
		expectLine(t, kids[i], "ready")
	}
	for _, k := range kids {
		if _, err := fmt.Fprintln(k.in, "go"); err != nil {
			t.Fatal(err)
		}
	}
	var all []grant
	for i, k := range kids {
		gs, acquired := readGrants(t, k)
		// A grant whose reply came after the run's deadline is not
		// returned (Acquire returns ctx's error, and the token is lost):
		// at most one per worker, whose call was in flight then.
		if lost := len(gs) - acquired; lost < 0 || lost > sharedWorker {
			t.Errorf("process %d: %d grants seen on the wire, %d permits returned", i, len(gs), acquired)
		}
		t.Logf("process %d: %d starts (%.1f/s)", i, acquired, float64(acquired)/sharedRun.Seconds())
		all = append(all, gs...)
	}
	closest, err := checkWindows(all, sharedBurst, sharedRate)
	if err != nil {
		t.Error(err)
	}
	t.Logf("closest window: %+.2f starts beyond burst + rate·t; reply intervals: %s", closest, spread(all))
	achieved := float64(len(all)-sharedBurst) / sharedRun.Seconds() // the full bucket's grants came at once
	t.Logf("total: %d starts, %.1f/s for a limit of %d/s", len(all), achieved, sharedRate)
	if achieved < 0.95*sharedRate {
		t.Errorf("achieved %.1f starts/s, want at least 95%% of %d/s", achieved, sharedRate)
	}
}

// spread describes how long the grants' round trips took.
func spread(gs []grant) string {
	ds := make([]time.Duration, len(gs))
	for i, g := range gs {
		ds[i] = time.Duration(g.Got - g.Sent)
	}
	if len(ds) == 0 {
		return "none"
	}
	slices.Sort(ds)
	return fmt.Sprintf("median %v, 99th percentile %v", ds[len(ds)/2], ds[len(ds)*99/100])
}

func expectLine(t *testing.T, c *child, want string) {
	t.Helper()
	got, err := c.line()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("child said %q, want %q", got, want)
	}
}

// readGrants reads a rate child's report up to its end.
func readGrants(t *testing.T, c *child) (gs []grant, acquired int) {
	t.Helper()
	for {
		l, err := c.line()
		if err != nil {
			t.Fatal(err)
		}
		if l == "end" {
			return gs, acquired
		}
		var g grant
		switch {
		case strings.HasPrefix(l, "acquired "):
			acquired = int(atoi(strings.TrimPrefix(l, "acquired ")))
		case fmtScan(l, "grant %d %d", &g.Sent, &g.Got):
			gs = append(gs, g)
		default:
			t.Fatalf("unexpected line from child: %q", l)
		}
	}
}

func fmtScan(s, format string, args ...any) bool {
	n, err := fmt.Sscanf(s, format, args...)
	return err == nil && n == len(args)
}

// rateChild plays one process of TestRateHoldsAcrossProcesses.
func rateChild() error {
	client := childClient()
	defer client.Close()
	key := os.Getenv(keyEnv)
	rec := &grantRecorder{bucket: "rate:{" + key + "}"}
	client.AddHook(rec)
	m := NewRate(client, key, sharedRate, sharedBurst)
	cmds := commands()
	fmt.Println("ready")
	if <-cmds != "go" {
		return errors.New("no go")
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedRun)
	defer cancel()
	var acquired atomic.Int64
	var failure atomic.Value
	var wg sync.WaitGroup
	for range sharedWorker {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p, err := m.Acquire(ctx)
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) {
						failure.Store(err)
					}
					return
				}
				acquired.Add(1)
				p.Done(throttle.Outcome{Status: throttle.Succeeded})
			}
		}()
	}
	wg.Wait()
	if err, ok := failure.Load().(error); ok {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(w, "acquired %d\n", acquired.Load())
	for _, g := range rec.grants() {
		fmt.Fprintf(w, "grant %d %d\n", g.Sent, g.Got)
	}
	fmt.Fprintln(w, "end")
	return w.Flush()
}

// grantRecorder is a go-redis hook that dates every token the rate
// script grants on one bucket by the interval of its round trip.
type grantRecorder struct {
	passHooks
	bucket string
	mu     sync.Mutex
	gs     []grant
}

func (r *grantRecorder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, c redis.Cmder) error {
		sent := time.Now().UnixNano()
		err := next(ctx, c)
		got := time.Now().UnixNano()
		if r.isGrant(c) {
			r.mu.Lock()
			r.gs = append(r.gs, grant{Sent: sent, Got: got})
			r.mu.Unlock()
		}
		return err
	}
}

// isGrant tells a call of the rate script on the bucket that granted a
// token. Its arguments are: eval or evalsha, the script or its sha, 2,
// the bucket, the pause key and four numbers; its reply starts with 1 for
// a grant.
func (r *grantRecorder) isGrant(c redis.Cmder) bool {
	cmd, ok := c.(*redis.Cmd)
	if !ok || cmd.Err() != nil {
		return false
	}
	args := cmd.Args()
	if len(args) != 9 || (args[0] != "eval" && args[0] != "evalsha") || args[3] != r.bucket {
		return false
	}
	reply, ok := cmd.Val().([]any)
	return ok && len(reply) > 0 && reply[0] == int64(1)
}

func (r *grantRecorder) grants() []grant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gs
}

const (
	heldSlots = 3
	heldLease = 600 * time.Millisecond
)

// TestSlotsComeBackWhenHolderIsKilled: a process holds every slot of a
// Concurrency and is killed with SIGKILL; its slots come back within one
// lease. Before the kill, the slots stay taken for two leases, which only
// renewal explains. Leases are timed by Redis, so this test runs in real
// time.
func TestSlotsComeBackWhenHolderIsKilled(t *testing.T) {
	srv := startRedis(t)
	holder := spawn(t, "hold", addrEnv+"="+srv.addr(), keyEnv+"=held")
	expectLine(t, holder, "held")
	m := NewConcurrency(srv.client(t), "held", heldSlots, heldLease)
	defer m.Close()
	ctx := context.Background()

	time.Sleep(2 * heldLease) // let the holder's leases outlive their first term
	if p, _, err := m.TryAcquire(ctx); p != nil || err != nil {
		t.Fatalf("TryAcquire while another process holds every slot = %v, %v; want no permit", p, err)
	}

	if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = holder.wait()
	killed := time.Now()
	ctx, cancel := context.WithTimeout(ctx, heldLease+5*time.Second)
	defer cancel()
	for i := range heldSlots {
		p, err := m.Acquire(ctx)
		if err != nil {
			t.Fatalf("slot %d after the kill: %v", i, err)
		}
		defer p.Done(throttle.Outcome{Status: throttle.Succeeded})
	}
	back := time.Since(killed)
	t.Logf("all %d slots back %v after the kill (lease %v)", heldSlots, back, heldLease)
	// A lease ends at most one lease after its last renewal, which came
	// before the kill; the rest is one poll and the round trips.
	if slack := 300 * time.Millisecond; back > heldLease+slack {
		t.Errorf("slots came back after %v, want within the lease %v (+%v)", back, heldLease, slack)
	}
}

// holdChild takes every slot and holds them until it is killed.
func holdChild() error {
	client := childClient()
	defer client.Close()
	m := NewConcurrency(client, os.Getenv(keyEnv), heldSlots, heldLease)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range heldSlots {
		if _, err := m.Acquire(ctx); err != nil {
			return err
		}
	}
	fmt.Println("held")
	time.Sleep(time.Minute)
	return errors.New("still alive a minute later")
}

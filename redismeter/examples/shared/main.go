// Command shared shows one rate limit shared by several processes through
// Redis. It starts a redis-server of its own on a free loopback port,
// checks that the Redis answering there is the process it started (when
// another process took the port first, it tries another port, five in
// all, and then fails saying what held it), runs three copies of itself
// as worker processes, each running trimeter.RunOnEach through one
// redismeter.NewRate(client, "demo", 30, 1), and prints each process's
// rate and the total: about 30 starts per second between them, not 30
// each. It stops Redis when done.
//
//	cd redismeter && go run ./examples/shared
//
// It needs redis-server on PATH (Debian and Ubuntu: apt-get install
// redis-server; macOS: brew install redis).
//
// An interrupt or a SIGTERM stops it: it ends its workers and Redis,
// removes Redis's files, prints "shared: interrupted" and exits with
// status 1.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/redismeter"
)

const (
	workers   = 3
	perSecond = 30
	burst     = 1
	runFor    = 5 * time.Second
)

// Environment of a worker process.
const (
	roleEnv  = "SHARED_DEMO_WORKER"
	addrEnv  = "SHARED_DEMO_ADDR"
	startEnv = "SHARED_DEMO_START"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: %s\n\nIt takes no flags and no arguments.\n", os.Args[0])
	}
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "shared: unexpected argument %q\n", flag.Arg(0))
		flag.Usage()
		os.Exit(2)
	}
	var err error
	if os.Getenv(roleEnv) != "" {
		err = work()
	} else {
		err = lead()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shared:", err)
		os.Exit(1)
	}
}

// lead starts Redis and the workers, and prints what they report. An
// interrupt or a SIGTERM ends the workers, then Redis, and removes
// Redis's directory before lead returns.
func lead() (err error) {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	defer func() {
		// Whatever step the signal cut short (Redis's start, a worker's),
		// the demo ends as interrupted.
		if err != nil && ctx.Err() != nil {
			err = errors.New("interrupted")
		}
	}()
	if _, err := exec.LookPath("redis-server"); err != nil {
		return errors.New("redis-server is not on PATH: install Redis first (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)")
	}
	addr, stop, err := startRedis(ctx, freePort)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Printf("redis-server on %s; %d processes share redismeter.NewRate(client, %q, %d, %d) for %v\n",
		addr, workers, "demo", perSecond, burst, runFor)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	start := time.Now().Add(time.Second) // time for the workers to start
	cmds := make([]*exec.Cmd, workers)
	for i := range workers {
		cmds[i] = exec.CommandContext(ctx, self)
		cmds[i].Env = append(os.Environ(), roleEnv+"="+strconv.Itoa(i+1), addrEnv+"="+addr,
			startEnv+"="+strconv.FormatInt(start.UnixNano(), 10))
		cmds[i].Stderr = os.Stderr
	}
	starts, err := runWorkers(cmds)
	if err != nil {
		return err
	}
	total := 0
	for i, n := range starts {
		fmt.Printf("process %d: %3d starts, %5.1f/s\n", i+1, n, float64(n)/runFor.Seconds())
		total += n
	}
	fmt.Printf("total:     %3d starts, %5.1f/s (limit %d/s: at most %d starts in %v)\n",
		total, float64(total)/runFor.Seconds(), perSecond, burst+int(perSecond*runFor.Seconds()), runFor)
	return nil
}

// runWorkers starts the worker processes that cmds describe, then reads
// each one's count of starts, in order, and waits for it. When one fails
// to start or fails, it kills the others and waits for them before it
// returns, so that none outlives the demo: it would run on for seconds
// and write its errors once Redis had stopped.
func runWorkers(cmds []*exec.Cmd) (starts []int, err error) {
	outs := make([]*bufio.Scanner, len(cmds))
	started, waited := 0, 0
	defer func() {
		for _, cmd := range cmds[waited:started] {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	for i, cmd := range cmds {
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		started++
		outs[i] = bufio.NewScanner(out)
	}
	for i, out := range outs {
		n := 0
		for out.Scan() {
			if c, ok := strings.CutPrefix(out.Text(), "starts "); ok {
				n, _ = strconv.Atoi(c)
			}
		}
		err := cmds[i].Wait()
		waited++
		if err != nil {
			return nil, fmt.Errorf("worker %d: %v", i+1, err)
		}
		starts = append(starts, n)
	}
	return starts, nil
}

// work runs one worker process: from the common start, for runFor, fake
// requests of 20 to 80 ms, at most 8 at once, each through the shared
// limit. It prints how many it started.
func work() error {
	client := redis.NewClient(&redis.Options{Addr: os.Getenv(addrEnv), ContextTimeoutEnabled: true})
	defer client.Close()
	rate := redismeter.NewRate(client, "demo", perSecond, burst)
	start, _ := strconv.ParseInt(os.Getenv(startEnv), 10, 64)
	time.Sleep(time.Until(time.Unix(0, start)))
	ctx, cancel := context.WithTimeout(context.Background(), runFor)
	defer cancel()
	var count atomic.Int64
	err := trimeter.RunOnEach(ctx, forever, func(ctx context.Context, _ int) error {
		count.Add(1)
		return request(ctx)
	}, trimeter.MaxAtOnce(8), trimeter.WithMeter(rate))
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	fmt.Printf("starts %d\n", count.Load())
	return nil
}

// forever yields 0, 1, 2, ... until the loop stops.
func forever(yield func(int) bool) {
	for i := 0; yield(i); i++ {
	}
}

// request stands for a call to a remote service.
func request(ctx context.Context) error {
	t := time.NewTimer(time.Duration(20+rand.IntN(60)) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startRedis runs redis-server on a port that freePort gives, with its
// files in a temporary directory and no persistence, and waits until it
// answers as itself. A port is free when freePort closes its listener, but
// another process may take it before redis-server does; a Redis that holds
// it would then answer in place of the demo's own, and the workers would
// count their starts in it. So the server that answers must report the
// process that the demo started: when another process holds the port,
// startRedis tries another one, portTries in all, and then fails saying
// what held the port. stop ends redis-server and removes the directory.
func startRedis(ctx context.Context, freePort func() (int, error)) (addr string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "redismeter-demo-")
	if err != nil {
		return "", nil, err
	}
	for try := 1; ; try++ {
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return "", nil, err
		}
		addr = "127.0.0.1:" + strconv.Itoa(port)
		end, err := runRedis(ctx, addr, dir)
		if err == nil {
			return addr, func() { end(); os.RemoveAll(dir) }, nil
		}
		if !errors.Is(err, errPortTaken) || try == portTries {
			os.RemoveAll(dir)
			return "", nil, err
		}
	}
}

// portTries is how many ports startRedis tries before it gives up.
const portTries = 5

// errPortTaken says that another process held the port.
var errPortTaken = errors.New("another process holds the port")

// freePort returns a loopback port that no process held a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// runRedis runs redis-server on addr and waits until it answers. The error
// wraps errPortTaken when another process held addr: a Redis that answers
// there as another process, or anything that made redis-server find the
// address in use. end stops redis-server and waits for it to exit.
func runRedis(ctx context.Context, addr, dir string) (end func(), err error) {
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	var out bytes.Buffer // read only once cmd has exited
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	end = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		<-exited
	}
	err = awaitRedis(ctx, addr, cmd.Process.Pid, exited)
	if err == nil {
		return end, nil
	}
	end()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if strings.Contains(out.String(), "Address already in use") {
		err = fmt.Errorf("%w: %v", errPortTaken, err)
	}
	return nil, fmt.Errorf("redis-server on %s: %w\n%s", addr, err, strings.TrimSpace(out.String()))
}

// awaitRedis waits until the Redis on addr answers, and checks that it is
// the one of process pid, which closes exited when it ends.
func awaitRedis(ctx context.Context, addr string, pid int, exited <-chan struct{}) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ContextTimeoutEnabled: true})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		infoCtx, cancel := context.WithTimeout(ctx, time.Second)
		info, err := c.Info(infoCtx, "server").Result()
		cancel()
		if err == nil {
			if other := processID(info); other != pid {
				return fmt.Errorf("%w: a Redis of process %d answers on it, not the one started (process %d)", errPortTaken, other, pid)
			}
			return nil
		}
		select {
		case <-exited:
			return errors.New("it exited before answering")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer in 10s: %v", err)
		}
	}
}

// processID returns the process_id of an INFO server reply, or 0.
func processID(info string) int {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

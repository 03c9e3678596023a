//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// The tests run the demo in a process of its own: the test binary starts
// itself again with leaderEnv set, and TestMain then runs main. Its
// workers are the test binary too, started with roleEnv set.
const leaderEnv = "SHARED_DEMO_TEST_LEADER"

// patience bounds every wait for the demo.
const patience = 30 * time.Second

// workersKilledWithin is how long after the leader's exit its workers may
// take to be gone: they are killed as it stops, and would otherwise run
// for seconds more.
const workersKilledWithin = 2 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(leaderEnv) != "" || os.Getenv(roleEnv) != "" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// A SIGTERM to the leader alone, as a container's stop or a kill sends,
// ends the demo as an interrupt does: the leader stops its workers and
// Redis, removes Redis's directory, reports the interruption and exits
// with status 1.
func TestSIGTERMToTheLeaderStopsItsWorkersAndRedis(t *testing.T) {
	tmp := t.TempDir()
	d := startDemo(t, []string{"TMPDIR=" + tmp})
	addr := d.awaitRedis()
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer client.Close()
	defer func() {
		if t.Failed() { // a Redis that the demo left running would outlive the test
			_ = client.ShutdownNoSave(context.Background()).Err()
		}
	}()
	d.awaitWorkers(client)
	if entries, err := os.ReadDir(tmp); err != nil || len(entries) != 1 {
		t.Fatalf("the temporary directory holds %d entries (%v) while Redis runs, want Redis's", len(entries), err)
	}

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(); err != nil && !isExit(err) {
		t.Fatal(err)
	}
	// The workers write to the leader's standard error: once they have
	// ended too, nothing holds it open. One that the leader left running
	// would hold it for seconds more, until its run ends (a run lasts
	// runFor from a second after the leader's start).
	select {
	case <-d.stderrClosed:
	case <-time.After(workersKilledWithin):
		t.Fatalf("a worker still runs %v after the leader's exit", workersKilledWithin)
	}
	if status := d.cmd.ProcessState.ExitCode(); status != 1 || !strings.Contains(d.stderr.String(), "shared: interrupted\n") {
		t.Errorf("exit status %d, errors %q; want 1 and the interruption", status, d.stderr.String())
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("Redis still answers on %s", addr)
	}
	if entries, err := os.ReadDir(tmp); err != nil || len(entries) != 0 {
		t.Errorf("the temporary directory holds %d entries (%v) after the demo, want none", len(entries), err)
	}
}

// When a worker fails, runWorkers kills the others and waits for them
// before it returns: none outlives the demo.
func TestAFailedWorkerEndsTheOthers(t *testing.T) {
	cmds := []*exec.Cmd{
		exec.Command("sh", "-c", "echo starts 3; exit 1"),
		exec.Command("sleep", "60"),
		exec.Command("sleep", "60"),
	}
	t.Cleanup(func() {
		for _, cmd := range cmds {
			if cmd.Process != nil && cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		}
	})
	if _, err := runWorkers(cmds); err == nil || !strings.Contains(err.Error(), "worker 1: exit status 1") {
		t.Errorf("runWorkers: %v, want worker 1's failure", err)
	}
	for i, cmd := range cmds[1:] {
		if cmd.ProcessState == nil {
			t.Errorf("worker %d still runs after runWorkers returned", i+2)
		}
	}
}

// An argument is refused, with the usage, before anything starts.
func TestAStrayArgumentIsRefused(t *testing.T) {
	d := startDemo(t, nil, "extra")
	if err := d.wait(); err != nil && !isExit(err) {
		t.Fatal(err)
	}
	<-d.stderrClosed
	status, stderr := d.cmd.ProcessState.ExitCode(), d.stderr.String()
	if status != 2 || !strings.Contains(stderr, `shared: unexpected argument "extra"`) || !strings.Contains(stderr, "Usage:") {
		t.Errorf("exit status %d, errors %q; want 2, the argument named and the usage", status, stderr)
	}
	if d.stdout.String() != "" {
		t.Errorf("the demo wrote %q, want nothing", d.stdout.String())
	}
}

// demo is the demo's leader running in a process of its own.
type demo struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	exited         chan struct{}
	err            error         // Wait's, once exited is closed
	stderrClosed   chan struct{} // closed once no process holds the leader's standard error
}

func startDemo(t *testing.T, env []string, args ...string) *demo {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := &demo{t: t, cmd: exec.Command(self, args...), exited: make(chan struct{})}
	d.cmd.Args[0] = "shared"
	d.cmd.Env = append(append(os.Environ(), leaderEnv+"=1"), env...)
	// Standard error is a pipe of the test's own, not one that Wait would
	// wait for: the workers inherit it.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stdout, d.cmd.Stderr = &d.stdout, w
	err = d.cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	d.stderrClosed = make(chan struct{})
	go func() {
		defer close(d.stderrClosed)
		defer r.Close()
		_, _ = io.Copy(&d.stderr, r)
	}()
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.exited
		<-d.stderrClosed // the workers end within runFor at most
	})
	return d
}

// awaitRedis waits for the line that gives Redis's address, and returns
// the address.
func (d *demo) awaitRedis() string {
	d.t.Helper()
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) {
		if rest, ok := strings.CutPrefix(d.stdout.String(), "redis-server on "); ok {
			if addr, _, ok := strings.Cut(rest, ";"); ok {
				return addr
			}
		}
		select {
		case <-d.exited:
			d.t.Fatalf("the demo exited (%v) before starting Redis; its errors:\n%s", d.err, d.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	d.t.Fatalf("no Redis address in %v; the demo wrote:\n%s", patience, d.stdout.String())
	return ""
}

// awaitWorkers waits until every worker has a connection to Redis: they
// are then running their limited loops.
func (d *demo) awaitWorkers(client *redis.Client) {
	d.t.Helper()
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) {
		list, err := client.ClientList(context.Background()).Result()
		// One line per connection: the workers' and this test's own.
		if err == nil && strings.Count(list, "\n") >= workers+1 {
			return
		}
		select {
		case <-d.exited:
			d.t.Fatalf("the demo exited (%v) before its workers ran; its errors:\n%s", d.err, d.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	d.t.Fatalf("the workers did not connect to Redis in %v", patience)
}

// wait waits for the leader to exit and returns Wait's error.
func (d *demo) wait() error {
	d.t.Helper()
	select {
	case <-d.exited:
		return d.err
	case <-time.After(patience):
		d.t.Fatalf("the demo still runs %v later", patience)
		return nil
	}
}

func isExit(err error) bool {
	var e *exec.ExitError
	return errors.As(err, &e)
}

// lockedBuffer is a bytes.Buffer that the process's output may be written
// to while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A SIGTERM that reaches the leader while Redis is still starting (here a
// redis-server that takes half a second to start, as on a loaded machine)
// ends the demo as an interrupt does: "shared: interrupted", status 1.
func TestSIGTERMWhileRedisStartsEndsTheDemoAsAnInterrupt(t *testing.T) {
	real, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(err)
	}
	bin, tmp := t.TempDir(), t.TempDir()
	started := filepath.Join(bin, "started")
	script := "#!/bin/sh\ntouch " + started + "\nsleep 0.5\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "redis-server"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	d := startDemo(t, []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "TMPDIR=" + tmp})
	// The leader starts Redis once it handles the signal: once the
	// wrapper has begun, the leader waits for Redis to answer.
	for deadline := time.Now().Add(patience); ; {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server was not started in %v", patience)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(); err != nil && !isExit(err) {
		t.Fatal(err)
	}
	<-d.stderrClosed
	if status := d.cmd.ProcessState.ExitCode(); status != 1 || !strings.Contains(d.stderr.String(), "shared: interrupted\n") {
		t.Errorf("exit status %d, errors %q; want 1 and the interruption", status, d.stderr.String())
	}
	if entries, err := os.ReadDir(tmp); err != nil || len(entries) != 0 {
		t.Errorf("the temporary directory holds %d entries (%v) after the demo, want none", len(entries), err)
	}
}

// A port that another Redis holds when the demo's redis-server comes to
// it is passed over: that Redis answers there, as another process, and
// the demo starts its own on the next port instead of running its workers
// against a server it did not start.
func TestAPortThatAnotherRedisHoldsIsPassedOver(t *testing.T) {
	ctx := context.Background()
	held, stopHeld, err := startRedis(ctx, freePort)
	if err != nil {
		t.Fatal(err)
	}
	defer stopHeld()
	ports, tries := heldThenFree(t, held)
	addr, stop, err := startRedis(ctx, ports)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if addr == held || *tries != 2 {
		t.Errorf("Redis on %s after %d ports, want the second port, not %s that another Redis holds", addr, *tries, held)
	}
	if err := ping(held); err != nil {
		t.Errorf("the Redis that held the port no longer answers: %v", err)
	}
}

// A port that a process other than Redis listens on is passed over too:
// redis-server finds the address in use and exits, and the demo tries the
// next port rather than wait for an answer that cannot come.
func TestAPortThatAnotherProcessHoldsIsPassedOver(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ports, tries := heldThenFree(t, l.Addr().String())
	start := time.Now()
	addr, stop, err := startRedis(context.Background(), ports)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if addr == l.Addr().String() || *tries != 2 {
		t.Errorf("Redis on %s after %d ports, want the second port, not %s that another process holds", addr, *tries, l.Addr())
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("took %v to pass over the port, want the exit of redis-server noticed, not a wait for an answer", took)
	}
}

// heldThenFree gives the address held's port first, then free ports; tries
// counts the ports given.
func heldThenFree(t *testing.T, held string) (ports func() (int, error), tries *int) {
	tries = new(int)
	return func() (int, error) {
		*tries++
		if *tries == 1 {
			return port(t, held), nil
		}
		return freePort()
	}, tries
}

// When every port it is given is held by another Redis, the demo fails
// after portTries of them, saying so, and leaves that Redis running.
func TestRedisFailsClearlyWhenEveryPortIsHeld(t *testing.T) {
	ctx := context.Background()
	held, stopHeld, err := startRedis(ctx, freePort)
	if err != nil {
		t.Fatal(err)
	}
	defer stopHeld()
	tries := 0
	ports := func() (int, error) { tries++; return port(t, held), nil }
	addr, stop, err := startRedis(ctx, ports)
	if err == nil {
		stop()
		t.Fatalf("Redis on %s, a port that another Redis holds", addr)
	}
	if !errors.Is(err, errPortTaken) || !strings.Contains(err.Error(), "a Redis of process") || tries != portTries {
		t.Errorf("after %d ports: %v; want %d ports and %v, naming the process that answered", tries, err, portTries, errPortTaken)
	}
	if err := ping(held); err != nil {
		t.Errorf("the Redis that held the port no longer answers: %v", err)
	}
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func ping(addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	return c.Ping(context.Background()).Err()
}

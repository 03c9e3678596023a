package redismeter

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// Some tests run copies of the test binary as separate processes; this
// variable tells such a copy which part to play.
const childEnv = "REDISMETER_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	redis.SetLogger(quiet{}) // the outage tests make go-redis log every failed dial
	goleak.VerifyTestMain(stopsExampleRedis{m})
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

var childRoles = map[string]func() error{
	"rate":  rateChild,
	"hold":  holdChild,
	"bench": benchChild,
}

func runChild(role string) int {
	play, ok := childRoles[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
		return 2
	}
	if err := play(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// child is a copy of the test binary playing a role. It reads commands
// from stdin and writes its results to stdout, one per line.
type child struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	errs *strings.Builder
	once sync.Once
	err  error
}

// spawn starts a child with the given role; env holds extra NAME=value
// settings. The child is killed when the test ends if it still runs.
func spawn(t testing.TB, role string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+role), env...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewScanner(out), errs: new(strings.Builder)}
	cmd.Stderr = c.errs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = c.wait()
	})
	return c
}

// line reads the child's next line of output.
func (c *child) line() (string, error) {
	if c.out.Scan() {
		return c.out.Text(), nil
	}
	if err := c.out.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("child ended early: %v\n%s", c.wait(), c.errs)
}

// wait waits for the child to exit, after its output was read; it may be
// called more than once.
func (c *child) wait() error {
	c.once.Do(func() { c.err = c.cmd.Wait() })
	return c.err
}

// env settings shared by the children.
const (
	addrEnv = "REDISMETER_TEST_ADDR"
	keyEnv  = "REDISMETER_TEST_KEY"
)

// childClient connects a child to the test's Redis.
func childClient() *redis.Client { return newClient(os.Getenv(addrEnv)) }

// commands reads the parent's commands from stdin into a channel that
// closes when stdin does.
func commands() <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			ch <- in.Text()
		}
	}()
	return ch
}

// untilClosed returns a context that ends when the parent closes stdin.
func untilClosed(cmds <-chan string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for range cmds {
		}
		cancel()
	}()
	return ctx, cancel
}

func atoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

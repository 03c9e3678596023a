package redismeter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// server is a redis-server process started for one test, on a free
// loopback port, with its files in a temporary directory and no
// persistence. It is stopped when the test ends.
type server struct {
	t    testing.TB
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
	exit chan struct{}
}

// startRedis starts redis-server from PATH. A missing redis-server fails
// the test: a test that cannot run has not passed.
func startRedis(t testing.TB) *server {
	t.Helper()
	s := &server{t: t, dir: t.TempDir()}
	t.Cleanup(s.stop)
	if err := s.launch(); err != nil {
		t.Fatal(err)
	}
	return s
}

// launch runs redis-server from PATH on a free loopback port. The port is
// free when pickPort closes it, but another process may take it before
// redis-server does: then another port is tried, five in all.
func (s *server) launch() error {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return errors.New("redis-server is not on PATH: install Redis (apt-get install redis-server, or brew install redis) to run these tests")
	}
	for try := 1; ; try++ {
		port, err := pickPort()
		if err != nil {
			return err
		}
		s.port = port
		err = s.run()
		if err == nil || !errors.Is(err, errPortTaken) || try == 5 {
			return err
		}
	}
}

// pickPort returns a loopback port that was free a moment ago.
func pickPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// start runs redis-server again on the server's port and waits until it
// answers.
func (s *server) start() {
	s.t.Helper()
	if err := s.run(); err != nil {
		s.t.Fatal(err)
	}
}

// errPortTaken says that another process held the server's port.
var errPortTaken = errors.New("the port is taken")

// run runs redis-server on the server's port and waits until it answers,
// as itself: a server that another process started on that port could
// answer in its place.
func (s *server) run() error {
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir)
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %v", err)
	}
	exit := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exit) }()
	s.mu.Lock()
	s.cmd, s.out, s.exit = cmd, out, exit
	s.mu.Unlock()
	if err := s.awaitPing(cmd.Process.Pid, exit); err != nil {
		s.stop()
		if strings.Contains(out.String(), "Address already in use") {
			err = fmt.Errorf("%w: %v", errPortTaken, err)
		}
		return fmt.Errorf("redis-server on %s: %w\n%s", s.addr(), err, out)
	}
	return nil
}

// awaitPing waits until the redis-server of process pid answers, and
// checks that it is that one.
func (s *server) awaitPing(pid int, exit <-chan struct{}) error {
	c := redis.NewClient(&redis.Options{Addr: s.addr(), MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		info, err := c.Info(ctx, "server").Result()
		cancel()
		if err == nil {
			if !strings.Contains(info, "\nprocess_id:"+strconv.Itoa(pid)+"\r") {
				return fmt.Errorf("%w: another redis-server answers on it", errPortTaken)
			}
			return nil
		}
		select {
		case <-exit:
			return fmt.Errorf("exited before answering")
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer: %v", err)
		}
	}
}

// stop ends redis-server (SIGTERM, then SIGKILL) and waits for it.
func (s *server) stop() {
	s.mu.Lock()
	cmd, exit := s.cmd, s.exit
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exit:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-exit
	}
}

// client returns a client of the server that applies context deadlines,
// closed when the test ends.
func (s *server) client(t testing.TB) *redis.Client {
	c := newClient(s.addr())
	t.Cleanup(func() { c.Close() })
	return c
}

func newClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialTimeout:           time.Second,
	})
}

// A port that another redis-server holds is reported as taken, so that
// startRedis tries another one rather than share that server.
func TestRedisOnATakenPortIsRefused(t *testing.T) {
	held := startRedis(t)
	s := &server{t: t, dir: t.TempDir(), port: held.port}
	t.Cleanup(s.stop)
	if err := s.run(); !errors.Is(err, errPortTaken) {
		t.Fatalf("a second redis-server on %s: %v, want %v", held.addr(), err, errPortTaken)
	}
	if err := held.client(t).Ping(context.Background()).Err(); err != nil {
		t.Fatalf("the first server no longer answers: %v", err)
	}
}

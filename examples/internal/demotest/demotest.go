// Package demotest runs an example program's main function in a process
// of its own, so that its tests can give it arguments and send it
// signals: the test binary starts itself again with an environment
// variable set, and its TestMain then runs the program's main instead of
// the tests.
package demotest

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// childEnv marks the test binary started again to run the program.
const childEnv = "TRIMETER_DEMO_CHILD"

// patience bounds every wait for the program: for a line of its output,
// and for its exit once it was told to stop or has failed.
const patience = 30 * time.Second

// RunIfChild runs main and exits with its status when the test binary was
// started by [Start]; otherwise it returns at once. Call it first in
// TestMain. The program's flags go on a fresh flag set, not beside the
// test binary's own.
func RunIfChild(main func() int) {
	if os.Getenv(childEnv) == "" {
		return
	}
	flag.CommandLine = flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	flag.CommandLine.Usage = func() { flag.Usage() } // as the flag package's own set does
	os.Exit(main())
}

// A Process is the program running in a process of its own.
type Process struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout output
	stderr output
	exited chan struct{} // closed once Wait has returned
	err    error         // Wait's error, once exited is closed
}

// Start runs the program in a process of its own with args as its
// arguments (name as its name) and env added to its environment. The
// process is killed, if it still runs, when the test ends.
func Start(t *testing.T, name string, env []string, args ...string) *Process {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, args...)
	cmd.Args[0] = name
	cmd.Env = append(append(os.Environ(), childEnv+"=1"), env...)
	p := &Process{t: t, cmd: cmd, exited: make(chan struct{})}
	p.stdout.changed = make(chan struct{})
	cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// AwaitLine waits for a line of the program's output that starts with
// prefix, and returns it. It fails the test if the program exits first,
// or if no such line comes within patience.
func (p *Process) AwaitLine(prefix string) string {
	p.t.Helper()
	timeout := time.After(patience)
	for {
		changed, line, ok := p.stdout.find(prefix)
		if ok {
			return line
		}
		select {
		case <-changed:
		case <-p.exited:
			if _, line, ok := p.stdout.find(prefix); ok {
				return line
			}
			p.t.Fatalf("%s exited (%v) with no line starting %q; its output:\n%s\nits errors:\n%s",
				p.cmd.Args[0], p.err, prefix, p.stdout.String(), p.stderr.String())
		case <-timeout:
			p.t.Fatalf("%s wrote no line starting %q in %v; its output:\n%s", p.cmd.Args[0], prefix, patience, p.stdout.String())
		}
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// Exit waits for the process to end and returns its exit status (-1 if a
// signal ended it) and what it wrote to its standard error. It fails the
// test if the process still runs after patience.
func (p *Process) Exit() (status int, stderr string) {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(patience):
		p.t.Fatalf("%s still runs %v later", p.cmd.Args[0], patience)
	}
	if _, ok := p.err.(*exec.ExitError); p.err != nil && !ok {
		p.t.Fatal(p.err)
	}
	return p.cmd.ProcessState.ExitCode(), p.stderr.String()
}

// output collects what the program writes to one of its streams.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced at each write, if not nil
}

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.changed != nil {
		close(o.changed)
		o.changed = make(chan struct{})
	}
	return o.buf.Write(b)
}

// find returns the first whole line so far that starts with prefix, if
// there is one, and a channel closed at the next write.
func (o *output) find(prefix string) (changed <-chan struct{}, line string, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, l := range strings.SplitAfter(o.buf.String(), "\n") {
		if strings.HasSuffix(l, "\n") && strings.HasPrefix(l, prefix) {
			return o.changed, strings.TrimSuffix(l, "\n"), true
		}
	}
	return o.changed, "", false
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

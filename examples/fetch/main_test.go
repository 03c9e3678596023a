//go:build unix

package main

import (
	"strings"
	"syscall"
	"testing"

	"github.com/trimeter-go/trimeter/examples/internal/demotest"
)

// A SIGTERM, as a container's stop sends, ends the run as an interrupt
// does: the program reports it and exits with status 1, rather than being
// killed by the signal.
func TestSIGTERMEndsTheRun(t *testing.T) {
	p := demotest.Start(t, "fetch", nil, "-quiet")
	p.AwaitLine("Fetching ")
	p.Signal(syscall.SIGTERM)
	status, stderr := p.Exit()
	if status != 1 || !strings.Contains(stderr, "fetch: interrupted\n") {
		t.Errorf("exit status %d, errors %q; want 1 and the run's cancellation", status, stderr)
	}
}

// An argument that is not a flag is refused, rather than silently ending
// the flags (the -quiet after it would be dropped).
func TestAStrayArgumentIsRefused(t *testing.T) {
	p := demotest.Start(t, "fetch", nil, "extra", "-quiet")
	status, stderr := p.Exit()
	if status != 2 || !strings.Contains(stderr, `fetch: unexpected argument "extra"`) || !strings.Contains(stderr, "-quiet") {
		t.Errorf("exit status %d, errors %q; want 2, the argument named and the usage", status, stderr)
	}
}

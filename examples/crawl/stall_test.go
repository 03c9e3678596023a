//go:build unix

package main

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/trimeter-go/trimeter/examples/internal/demo"
)

// stallProcess stops the whole test process (every thread: the crawler,
// the hosts' server, the timers) for 300 ms, as a loaded machine or a
// VM's steal time may, and returns once it runs again.
func stallProcess(t *testing.T) {
	cmd := exec.Command("sh", "-c", "kill -STOP $PPID; sleep 0.3; kill -CONT $PPID")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("stall: %v %s", err, out)
	}
}

// stallAtFirst503 is an http.RoundTripper that stalls the process once,
// at the first 503 answer: when it reaches the client, on its way to the
// crawler, which has not read it yet; or, atClose, when its body is
// closed: the fetcher has read the answer, and its task is on its way to
// hand the Pushback back to the scheduler (the Close is deferred).
type stallAtFirst503 struct {
	t       *testing.T
	next    http.RoundTripper
	atClose bool
	once    sync.Once
}

func (s *stallAtFirst503) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		return resp, err
	}
	if s.atClose {
		resp.Body = stallAtClose{resp.Body, s}
	} else {
		s.stall(r.Host + " answered 503")
	}
	return resp, err
}

// stall stalls the process, the first time it is called.
func (s *stallAtFirst503) stall(where string) {
	s.once.Do(func() { s.t.Logf("%s; stalling the process for 300 ms", where); stallProcess(s.t) })
}

type stallAtClose struct {
	io.ReadCloser
	s *stallAtFirst503
}

func (b stallAtClose) Close() error {
	b.s.stall("the first 503's body is closed")
	return b.ReadCloser.Close()
}

// crawlStalled runs the crawl of TestASmallCrawlHoldsTheHostsLimits with
// one stall of the whole process at the busy host's first 503, and checks
// that the hosts saw no problem.
func crawlStalled(t *testing.T, atClose bool) report {
	t.Helper()
	stalling := func(client *http.Client) func(context.Context, link) (fetched, error) {
		c := *client
		c.Transport = &stallAtFirst503{t: t, next: client.Transport, atClose: atClose}
		return fetcher(&c)
	}
	rep, err := runWith(context.Background(), smallConfig, demo.NewConsole(&strings.Builder{}, false), stalling)
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.problems(); len(p) > 0 {
		t.Errorf("problems: %q", p)
	}
	return rep
}

// The crawl with one stall of 300 ms while the busy host's first 503 is
// on its way to the crawler. The crawler does nothing wrong: it honours
// the Retry-After from the moment it reads it. Yet the busy host counts a
// request "during a pause": one that the crawler started, its token due
// after the stall, before the 503 had reached it.
func TestASmallCrawlSurvivesAProcessStall(t *testing.T) {
	rep := crawlStalled(t, false)
	if rep.fetch.Retried != 8 {
		t.Errorf("%d retries, want 8 (6 after a 500, 2 after a 503)", rep.fetch.Retried)
	}
}

// The same with the stall a moment later: after the fetcher read the 503,
// before its task returned the Pushback. A task that the scheduler starts
// meanwhile, its token due during the stall, does not break the pause:
// the crawler did not know of it yet.
func TestASmallCrawlSurvivesAStallAfterThe503WasRead(t *testing.T) {
	crawlStalled(t, true)
}

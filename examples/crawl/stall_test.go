//go:build unix

package main

import (
	"context"
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

// stallOnFirst503 is an http.RoundTripper that stalls the process once,
// when the first 503 answer reaches the client: the answer is on its way
// to the crawler, which has not read it yet.
type stallOnFirst503 struct {
	t    *testing.T
	next http.RoundTripper
	once sync.Once
}

func (s *stallOnFirst503) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusServiceUnavailable {
		s.once.Do(func() { s.t.Logf("%s answered 503; stalling the process for 300 ms", r.Host); stallProcess(s.t) })
	}
	return resp, err
}

// The crawl of TestASmallCrawlHoldsTheHostsLimits, with one stall of the
// whole test process of 300 ms while the busy host's first 503 is on its
// way to the crawler. The crawler does nothing wrong: it honours the
// Retry-After from the moment it reads it. Yet the busy host counts a
// request "during a pause": one that the crawler started, its token due
// after the stall, before the 503 had reached it.
func TestASmallCrawlSurvivesAProcessStall(t *testing.T) {
	stalling := func(client *http.Client) func(context.Context, link) (fetched, error) {
		c := *client
		c.Transport = &stallOnFirst503{t: t, next: client.Transport}
		return fetcher(&c)
	}
	rep, err := runWith(context.Background(), smallConfig, demo.NewConsole(&strings.Builder{}, false), stalling)
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.problems(); len(p) > 0 {
		t.Errorf("problems: %q", p)
	}
	if rep.fetch.Retried != 8 {
		t.Errorf("%d retries, want 8 (6 after a 500, 2 after a 503)", rep.fetch.Retried)
	}
}

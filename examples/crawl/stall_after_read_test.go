//go:build unix

package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/trimeter-go/trimeter/examples/internal/demo"
)

// stallAtClose stalls the whole process for 300 ms when the body of the
// first 503 is closed: the fetcher has read the answer, and its task is on
// its way to hand the Pushback back to the scheduler (the Close is
// deferred).
type stallAtClose struct {
	io.ReadCloser
	t    *testing.T
	once *sync.Once
}

func (b stallAtClose) Close() error {
	b.once.Do(func() { b.t.Log("stalling the process for 300 ms at the first 503's Close"); stallProcess(b.t) })
	return b.ReadCloser.Close()
}

type stallAfterFirst503 struct {
	t    *testing.T
	next http.RoundTripper
	once sync.Once
}

func (s *stallAfterFirst503) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusServiceUnavailable {
		resp.Body = stallAtClose{resp.Body, s.t, &s.once}
	}
	return resp, err
}

// As TestASmallCrawlSurvivesAProcessStall, with the stall a moment later:
// after the fetcher read the 503, before its task returned the Pushback.
// A task that the scheduler starts meanwhile, its token due during the
// stall, does not break the pause: the crawler did not know of it yet.
func TestASmallCrawlSurvivesAStallAfterThe503WasRead(t *testing.T) {
	stalling := func(client *http.Client) func(context.Context, link) (fetched, error) {
		c := *client
		c.Transport = &stallAfterFirst503{t: t, next: client.Transport}
		return fetcher(&c)
	}
	rep, err := runWith(context.Background(), smallConfig, demo.NewConsole(&strings.Builder{}, false), stalling)
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.problems(); len(p) > 0 {
		t.Errorf("problems: %q", p)
	}
}

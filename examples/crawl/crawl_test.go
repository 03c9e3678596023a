package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/examples/internal/demo"
	"github.com/trimeter-go/trimeter/examples/internal/demotest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	demotest.RunIfChild(crawlMain)
	goleak.VerifyTestMain(m)
}

// smallConfig crawls four hosts, one of each kind, in about 2.5 s: the
// busy host asks for two pauses of a second. The hosts leave the crawler
// more room than in the demo, so that a loaded machine cannot bunch its
// requests up past a host's limit; but the busy host has pages enough
// after each 503, and a grace short enough, that a crawler that ignored
// its Retry-After would send it a request during the pause.
var smallConfig = config{
	hosts: []hostPlan{{"a.test", steady, 12}, {"b.test", flaky, 20}, {"c.test", busy, 12}, {"d.test", slow, 4}},
	rules: rules{atOnce: 2, perSecond: 40, pause: time.Second, grace: 250 * time.Millisecond,
		busyEvery: 6, slowness: 0.1},
	hostAtOnce: 2, perHost: 20, attempts: 3, atOnce: 6, storeAtOnce: 2, seed: 3, verbose: true,
}

func TestASmallCrawlHoldsTheHostsLimits(t *testing.T) {
	var out strings.Builder
	rep, err := run(context.Background(), smallConfig, demo.NewConsole(&out, false))
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.problems(); len(p) > 0 {
		t.Errorf("problems: %q", p)
	}
	// b.test: page 19 is missing, page 11 always fails; 3 and 13 fail once,
	// 7 twice, 11 three times. c.test: its 6th and 12th requests get a 503.
	if rep.stored != 46 || rep.failed != 2 {
		t.Errorf("%d stored, %d failed; want 46 and 2", rep.stored, rep.failed)
	}
	want := map[string]map[int]int{
		"b.test": {http.StatusOK: 18, http.StatusInternalServerError: 7, http.StatusNotFound: 1},
		"c.test": {http.StatusOK: 12, http.StatusServiceUnavailable: 2},
	}
	for _, h := range rep.hosts {
		if w, ok := want[h.plan.name]; ok && !equal(h.counts().sent, w) {
			t.Errorf("%s answered %v, want %v", h.plan.name, h.counts().sent, w)
		}
	}
	if rep.fetch.Retried != 8 {
		t.Errorf("%d retries, want 8 (6 after a 500, 2 after a 503)", rep.fetch.Retried)
	}
	if n := strings.Count(out.String(), "FAIL"); n != 2 {
		t.Errorf("printed %d failures, want 2:\n%s", n, out.String())
	}
}

func equal(a, b map[int]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// pausedHost returns a host of the small crawl's rules whose pause of a
// second began now, and now.
func pausedHost() (*host, time.Time) {
	h := newHost(hostPlan{"a.test", steady, 5}, smallConfig.rules)
	now := time.Now()
	h.pausedFrom, h.pausedUntil = now, now.Add(time.Second)
	return h, now
}

func TestAHostTurnsAwayRequestsOverItsLimits(t *testing.T) {
	h, now := pausedHost()
	cases := []struct {
		name               string
		at                 time.Duration
		inFlight, inWindow int
		want               int
	}{
		{"within the grace after a pause began", 200 * time.Millisecond, 1, 1, http.StatusOK},
		{"during the pause", 600 * time.Millisecond, 1, 1, http.StatusTooManyRequests},
		{"after the pause", time.Second, 1, 1, http.StatusOK},
		{"one too many at once", time.Second, 3, 1, http.StatusTooManyRequests},
		{"one too many in a second", time.Second, 1, 41, http.StatusTooManyRequests},
	}
	for _, c := range cases {
		if got := h.admit(now.Add(c.at), time.Time{}, c.inFlight, c.inWindow, 0, true); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	h.answer(httptest.NewRecorder(), http.StatusTooManyRequests, 0)
	rep := report{cfg: smallConfig, hosts: []*host{h}}
	if p := rep.problems(); len(p) != 1 || !strings.Contains(p[0], "a.test turned away 3 request(s) over its limits (1 at once, 1 during a pause, 1 in a second)") {
		t.Errorf("problems = %q, want one for a.test", p)
	}
}

// A request started before the crawler knew of a pause does not break
// it, however late it arrives; one started after does, past the grace
// counted from then.
func TestAHostJudgesAPauseFromWhenTheCrawlerKnewOfIt(t *testing.T) {
	h, now := pausedHost()
	cases := []struct {
		name     string
		at, read time.Duration
		want     int
	}{
		{"started before the crawler knew of the pause, arriving late", 600 * time.Millisecond, -time.Second, http.StatusOK},
		{"within the grace after the crawler knew of it", 300 * time.Millisecond, 100 * time.Millisecond, http.StatusOK},
		{"past the grace after the crawler knew of it", 600 * time.Millisecond, 100 * time.Millisecond, http.StatusTooManyRequests},
		{"after the pause", time.Second, 100 * time.Millisecond, http.StatusOK},
	}
	for _, c := range cases {
		if got := h.admit(now.Add(c.at), now.Add(c.read), 1, 1, 0, true); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
}

// The small crawl can fail: a crawler that ignores the busy host's
// Retry-After (its 503 retried as a plain error, at once) is caught
// sending a request during the pause.
func TestASmallCrawlCatchesACrawlerThatIgnoresRetryAfter(t *testing.T) {
	ignoring := func(client *http.Client) func(context.Context, link) (fetched, error) {
		fetch := fetcher(client)
		return func(ctx context.Context, l link) (fetched, error) {
			f, err := fetch(ctx, l)
			var pb *trimeter.PushbackError
			if errors.As(err, &pb) {
				err = errors.New(err.Error()) // the same failure, without its pause
			}
			return f, err
		}
	}
	rep, err := runWith(context.Background(), smallConfig, demo.NewConsole(io.Discard, false), ignoring)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.problems()) == 0 {
		t.Errorf("a crawler that ignores Retry-After shows no problem (c.test answered %v)", rep.hosts[2].counts().sent)
	}
}

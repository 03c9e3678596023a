package main

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trimeter-go/trimeter/examples/internal/demo"
)

// rules are what every host enforces, and how its pages behave.
type rules struct {
	atOnce    int           // requests in progress at once
	perSecond int           // requests arriving within any one second
	pause     time.Duration // the Retry-After of a 429 or 503: whole seconds
	// grace is how long after a 429 or 503 requests may still arrive
	// without breaking the pause: they were sent before the crawler knew of the pause.
	// It counts from when the crawler knew of the pause, when the request
	// says (pauseReadHeader), and from when the answer left otherwise.
	grace     time.Duration
	busyEvery int     // a busy host answers 503 to every busyEvery-th request
	slowness  float64 // scales every page's latency
}

// A host answers for one host name. It turns away, with 429, a request
// over its limits or one sent during the pause it asked for, and counts
// what it sees.
type host struct {
	plan  hostPlan
	rules rules
	tally demo.Tally

	mu          sync.Mutex
	admitted    int
	attempts    map[int]int    // requests per page, admitted ones
	served      map[int]int    // 200 answers per page
	sent        map[int]int    // answers per status code
	over        map[string]int // requests turned away, by reason
	pausedFrom  time.Time
	pausedUntil time.Time
}

func newHost(p hostPlan, r rules) *host {
	return &host{plan: p, rules: r, attempts: map[int]int{}, served: map[int]int{}, sent: map[int]int{}, over: map[string]int{}}
}

func (h *host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	inFlight, inWindow := h.tally.Arrive(now, time.Second)
	n, found := pageNumber(r.URL.Path, h.plan.pages)
	status := h.admit(now, pauseRead(r), inFlight, inWindow, n, found)
	if status == http.StatusOK || status == http.StatusInternalServerError {
		demo.Sleep(r.Context(), time.Duration(float64(latency(h.plan, n))*h.rules.slowness))
	}
	// The request stops counting before any byte of the answer leaves.
	h.tally.Leave()
	h.answer(w, status, n)
}

// pauseReadHeader carries, in nanoseconds since epoch, when the crawler
// that sent a request last knew of a pause the host asked for: when its
// task handed a 429 or 503 from the host back to its scheduler (0 if none
// did). A request that the crawler started before it knew of the pause
// does not break the pause, however late it arrives: a crawler cannot
// hold off for an answer that has not reached its scheduler, and a
// stalled process may take any time to get it there.
const pauseReadHeader = "X-Pause-Read"

// epoch is the instant the times of pauseReadHeader count from: the
// crawler and the hosts run in one process.
var epoch = time.Now()

// pauseRead returns when the crawler that sent r last knew of a pause the
// host asked for, or the zero time if r does not say.
func pauseRead(r *http.Request) time.Time {
	ns, err := strconv.ParseInt(r.Header.Get(pauseReadHeader), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return epoch.Add(time.Duration(ns))
}

// admit decides the status of a request that arrived at now for page n,
// sent by a crawler that last knew of a pause at read (zero: it did not
// say).
func (h *host) admit(now, read time.Time, inFlight, inWindow, n int, found bool) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case inFlight > h.rules.atOnce:
		h.over["at once"]++
		return http.StatusTooManyRequests
	case inWindow > h.rules.perSecond:
		h.over["in a second"]++
		return http.StatusTooManyRequests
	case h.breaksPause(now, read):
		h.over["during a pause"]++
		return http.StatusTooManyRequests
	case !found:
		return http.StatusNotFound
	}
	h.admitted++
	h.attempts[n]++
	if h.plan.kind == busy && h.admitted%h.rules.busyEvery == 0 {
		return http.StatusServiceUnavailable
	}
	if h.plan.kind == flaky {
		fails, missing := flakyPage(n)
		if missing {
			return http.StatusNotFound
		}
		if h.attempts[n] <= fails {
			return http.StatusInternalServerError
		}
	}
	return http.StatusOK
}

// breaksPause says whether a request that arrived at now, from a crawler
// that last knew of a pause at read, breaks the pause in force: it came
// past the grace, counted from when the crawler knew of the pause (from
// when the answer left if the request does not say), and before the
// pause's end. h.mu is held.
func (h *host) breaksPause(now, read time.Time) bool {
	from := h.pausedFrom
	if !read.IsZero() {
		if read.Before(h.pausedFrom) { // started before the crawler knew of the pause
			return false
		}
		from = read
	}
	return !now.Before(from.Add(h.rules.grace)) && now.Before(h.pausedUntil)
}

// answer writes the answer, counts it, and starts a pause after a 429 or
// 503.
func (h *host) answer(w http.ResponseWriter, status, n int) {
	h.mu.Lock()
	h.sent[status]++
	switch status {
	case http.StatusOK:
		h.served[n]++
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		h.pausedFrom = time.Now()
		h.pausedUntil = h.pausedFrom.Add(h.rules.pause)
		w.Header().Set("Retry-After", strconv.Itoa(int(h.rules.pause/time.Second)))
	}
	h.mu.Unlock()
	if status != http.StatusOK {
		http.Error(w, http.StatusText(status), status)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(pageBody(h.plan, n))
}

// pageNumber parses /page/N, for N below pages.
func pageNumber(path string, pages int) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(path, "/page/"))
	return n, err == nil && n >= 0 && n < pages
}

// hostCounts is what one host counted.
type hostCounts struct {
	requests, peak, maxInSecond int
	sent                        map[int]int // answers per status
	over                        map[string]int
	twice                       []int // pages served more than once
}

// counts returns what h counted so far.
func (h *host) counts() hostCounts {
	c := hostCounts{requests: h.tally.Requests(), peak: h.tally.Peak(), maxInSecond: h.tally.MaxInWindow(time.Second)}
	h.mu.Lock()
	defer h.mu.Unlock()
	c.sent, c.over = maps.Clone(h.sent), maps.Clone(h.over)
	for n, times := range h.served {
		if times > 1 {
			c.twice = append(c.twice, n)
		}
	}
	slices.Sort(c.twice)
	return c
}

package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trimeter-go/trimeter/examples/internal/demo"
)

// A page is what the server answers for one path.
type page struct {
	latency time.Duration
	status  int // http.StatusOK, or the failure the page answers with
	size    int // bytes of body for a page that answers 200
}

// planPages decides every page's latency, status and size from seed: most
// pages are quick, some slow, a few very slow, and about one in sixteen
// fails. slowness scales every latency (0.5 for the demo).
func planPages(n int, seed uint64, slowness float64) []page {
	rng := rand.New(rand.NewPCG(seed, seed))
	pages := make([]page, n)
	for i := range pages {
		ms := 40 + rng.IntN(100)
		switch r := rng.Float64(); {
		case r > 0.95:
			ms = 900 + rng.IntN(500)
		case r > 0.70:
			ms = 200 + rng.IntN(300)
		}
		status := http.StatusOK
		switch r := rng.Float64(); {
		case r < 0.04:
			status = http.StatusInternalServerError
		case r < 0.06:
			status = http.StatusNotFound
		}
		pages[i] = page{
			latency: time.Duration(float64(ms) * slowness * float64(time.Millisecond)),
			status:  status,
			size:    1024 + rng.IntN(15*1024),
		}
	}
	return pages
}

// startedHeader carries the moment the client started a request, in
// nanoseconds since an instant that the client and the server share.
const startedHeader = "X-Started"

// A server serves planned pages at /page/N on 127.0.0.1 and counts how
// many requests it handles at once, and when each request was started.
//
// It counts starts, which is what MaxPerSecond limits, rather than
// arrivals: requests take slightly different times to travel, so a second
// of starts can reach the server in a little less than a second. (A real
// API counts arrivals, and a client leaves it some room: the crawl example
// does.) The client stamps each request with its start, in startedHeader.
type server struct {
	pages []page
	epoch time.Time // the instant the stamps count from
	tally demo.Tally
	http  *http.Server
	url   string
}

// startServer starts serving pages on a free loopback port, reading the
// clients' stamps as counted from epoch.
func startServer(pages []page, epoch time.Time) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{pages: pages, epoch: epoch, url: "http://" + ln.Addr().String()}
	s.http = &http.Server{Handler: s}
	go s.http.Serve(ln)
	return s, nil
}

// Close stops the server and closes its connections.
func (s *server) Close() error { return s.http.Close() }

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.tally.Arrive(s.started(r), time.Second)
	p, ok := s.lookup(r.URL.Path)
	if ok {
		demo.Sleep(r.Context(), p.latency)
	}
	// The request stops counting before any byte of the answer leaves.
	s.tally.Leave()
	switch {
	case !ok:
		http.NotFound(w, r)
	case p.status != http.StatusOK:
		http.Error(w, http.StatusText(p.status), p.status)
	default:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(body(r.URL.Path, p.size))
	}
}

// started returns when the client started r, or now if it did not say.
func (s *server) started(r *http.Request) time.Time {
	ns, err := strconv.ParseInt(r.Header.Get(startedHeader), 10, 64)
	if err != nil {
		return time.Now()
	}
	return s.epoch.Add(time.Duration(ns))
}

// lookup returns the page served at path.
func (s *server) lookup(path string) (page, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(path, "/page/"))
	if err != nil || n < 0 || n >= len(s.pages) {
		return page{}, false
	}
	return s.pages[n], true
}

// body returns an HTML page of about size bytes.
func body(path string, size int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "<html><head><title>%s</title></head><body>\n", path)
	for b.Len() < size {
		b.WriteString("<p>A page of the test server, served after a planned wait.</p>\n")
	}
	b.WriteString("</body></html>\n")
	return []byte(b.String())
}

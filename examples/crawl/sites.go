package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// A kind says how a host behaves, within the limits every host enforces.
type kind int

const (
	steady kind = iota // pages take 50 to 200 ms, all of them found
	slow               // pages take 250 to 450 ms
	busy               // now and then answers 503 with Retry-After
	flaky              // some pages fail once, twice or always; some are missing
)

func (k kind) String() string {
	return [...]string{"steady", "slow", "busy", "flaky"}[k]
}

// A hostPlan names a host, its kind and how many pages it has.
type hostPlan struct {
	name  string
	kind  kind
	pages int
}

// demoHosts lays out the demo's 20 hosts and 1,960 pages.
func demoHosts() []hostPlan {
	var hosts []hostPlan
	add := func(k kind, n, pages int) {
		for range n {
			hosts = append(hosts, hostPlan{fmt.Sprintf("site%02d.test", len(hosts)+1), k, pages})
		}
	}
	add(steady, 13, 110)
	add(flaky, 3, 90)
	add(busy, 2, 70)
	add(slow, 2, 60)
	return hosts
}

// A link is one page to crawl.
type link struct {
	host string
	page int
}

func (l link) url() string { return fmt.Sprintf("http://%s/page/%d", l.host, l.page) }

// sitemap lists every page of every host, shuffled from seed.
func sitemap(hosts []hostPlan, seed uint64) []link {
	var links []link
	for _, h := range hosts {
		for p := range h.pages {
			links = append(links, link{h.name, p})
		}
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	rng.Shuffle(len(links), func(i, j int) { links[i], links[j] = links[j], links[i] })
	return links
}

// never is how many failures a page that always fails answers with first.
const never = math.MaxInt

// flakyPage says how a flaky host's page n behaves: how many of the first
// requests for it fail with 500, and whether it is missing (404).
func flakyPage(n int) (fails int, missing bool) {
	switch {
	case n%40 == 19:
		return 0, true
	case n%30 == 11:
		return never, false
	case n%25 == 7:
		return 2, false
	case n%10 == 3:
		return 1, false
	}
	return 0, false
}

// failsForGood says whether page n of h never answers 200 to a crawler
// that makes attempts attempts.
func failsForGood(h hostPlan, n, attempts int) bool {
	if h.kind != flaky {
		return false
	}
	fails, missing := flakyPage(n)
	return missing || fails >= attempts
}

// latency is how long page n of h takes to answer, before scaling.
func latency(h hostPlan, n int) time.Duration {
	rng := rand.New(rand.NewPCG(uint64(len(h.name)), uint64(n)))
	if h.kind == slow {
		return time.Duration(250+rng.IntN(200)) * time.Millisecond
	}
	return time.Duration(50+rng.IntN(150)) * time.Millisecond
}

var words = strings.Fields("a page from a host that allows two requests at once " +
	"and ten a second waits for its turn like every other page in the crawl")

// pageBody is the HTML of page n of h: a title, links to other pages of
// the same host and a few paragraphs.
func pageBody(h hostPlan, n int) []byte {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(h.pages)))
	var b strings.Builder
	fmt.Fprintf(&b, "<html><head><title>%s page %d</title></head><body>\n", h.name, n)
	for range 3 + rng.IntN(8) {
		fmt.Fprintf(&b, "<a href=\"/page/%d\">more</a>\n", rng.IntN(h.pages))
	}
	for range 10 + rng.IntN(20) {
		b.WriteString("<p>")
		for range 20 + rng.IntN(20) {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		b.WriteString("</p>\n")
	}
	b.WriteString("</body></html>\n")
	return []byte(b.String())
}

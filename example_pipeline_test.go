package trimeter_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/trimeter-go/trimeter"
)

// A three-stage pipeline: fetch pages (at most 2 at once per host), parse
// them 4 at a time, and store them 4 at a time. Each stage pulls from the
// one before only as its tasks can start, and a break or an error at the
// end stops all three. A plain iterator helper fits between stages: here
// one that drops short pages (the three whose path ends in 1).
func ExampleThen() {
	ctx := context.Background()
	links := slices.Values([]string{
		"https://a.example/1", "https://b.example/1", "https://a.example/2",
		"https://c.example/1", "https://b.example/2", "https://a.example/3",
	})
	host := func(link string) string {
		u, _ := url.Parse(link)
		return u.Host
	}
	fetch := func(_ context.Context, link string) (string, error) {
		words := int(link[len(link)-1] - '0') // 1 to 3 words after the title
		return "<title>" + link + "</title>" + strings.Repeat(" word", words), nil
	}
	parse := func(_ context.Context, page string) (int, error) { return len(strings.Fields(page)), nil }
	var mu sync.Mutex
	stored := map[int]int{}
	store := func(_ context.Context, words int) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		stored[words]++
		return len(stored), nil
	}

	pages := trimeter.AMap(ctx, links, fetch, trimeter.MaxAtOnce(4),
		trimeter.PerKey(host, trimeter.MaxAtOnce(2)), trimeter.Ordered())
	counts := trimeter.Then(ctx, longerThan(40, pages), parse, trimeter.MaxAtOnce(4), trimeter.Ordered())
	ids := trimeter.Then(ctx, counts, store, trimeter.MaxAtOnce(4))

	n := 0
	for _, err := range ids {
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		n++
	}
	fmt.Println(n, "pages stored")
	// Output: 3 pages stored
}

// longerThan passes on the pages longer than n bytes, and errors as they
// are: a filter written as a plain iterator.
func longerThan(n int, pages iter.Seq2[string, error]) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for p, err := range pages {
			if err == nil && len(p) <= n {
				continue
			}
			if !yield(p, err) {
				return
			}
		}
	}
}

// Each host may take one request at a time; a 429 from it holds off that
// host (and only it) for the time it asked, and the request is tried again
// through the same limits. Permanent errors are not retried.
func ExamplePushback() {
	busy := errors.New("429 Too Many Requests")
	var mu sync.Mutex
	tries := map[string]int{}
	fetch := func(_ context.Context, link string) (string, error) {
		mu.Lock()
		tries[link]++
		n := tries[link]
		mu.Unlock()
		switch {
		case strings.HasSuffix(link, "/gone"):
			return "", trimeter.Permanent(errors.New(link + ": 404 Not Found"))
		case strings.HasPrefix(link, "https://busy.") && n == 1:
			return "", trimeter.Pushback(0, busy) // Retry-After: 0
		}
		return "ok", nil
	}
	links := slices.Values([]string{"https://busy.example/1", "https://calm.example/1", "https://calm.example/gone"})
	for in, out := range trimeter.Outcomes(context.Background(), links, fetch,
		trimeter.PerKey(func(l string) string { return strings.Split(l, "/")[2] }, trimeter.MaxAtOnce(1)),
		trimeter.Retry(3), trimeter.Ordered()) {
		mu.Lock()
		n := tries[in.Value]
		mu.Unlock()
		fmt.Printf("%s: %v after %d attempt(s), error: %v\n", in.Value, out.Value, n, out.Err)
	}
	// Output:
	// https://busy.example/1: ok after 2 attempt(s), error: <nil>
	// https://calm.example/1: ok after 1 attempt(s), error: <nil>
	// https://calm.example/gone:  after 1 attempt(s), error: https://calm.example/gone: 404 Not Found
}

// Outcomes and ThenOutcomes make a pipeline that keeps going past
// failures: a page that could not be fetched passes through the second
// stage as a failure, without a call, and every outcome at the end still
// names the input it came from, whichever stage it failed in.
func ExampleThenOutcomes() {
	ctx := context.Background()
	urls := slices.Values([]string{
		"https://example.com/",
		"https://example.com/missing",
		"https://example.com/about",
	})
	store := func(_ context.Context, size int) (string, error) {
		if size > 2400 {
			return "", fmt.Errorf("%d bytes: too large to store", size)
		}
		return fmt.Sprintf("stored %d bytes", size), nil
	}

	sizes := trimeter.Outcomes(ctx, urls, fetchSize, trimeter.MaxAtOnce(2), trimeter.Ordered())
	for in, out := range trimeter.ThenOutcomes(ctx, sizes, store, trimeter.MaxAtOnce(2), trimeter.Ordered()) {
		if out.Err != nil {
			fmt.Printf("#%d %s: error: %v\n", in.Index, in.Value, out.Err)
			continue
		}
		fmt.Printf("#%d %s: %s\n", in.Index, in.Value, out.Value)
	}
	// Output:
	// #0 https://example.com/: stored 2000 bytes
	// #1 https://example.com/missing: error: GET https://example.com/missing: 404 Not Found
	// #2 https://example.com/about: error: 2500 bytes: too large to store
}

package trimeter_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/throttle"
)

// pageURLs yields n made-up page addresses.
func pageURLs(n int) iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := range n {
			if !yield(fmt.Sprintf("https://example.com/page/%d", i)) {
				return
			}
		}
	}
}

// fetchSize stands in for an HTTP GET of url: it returns the size of the
// body. Addresses that contain "missing" fail.
func fetchSize(ctx context.Context, url string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if strings.Contains(url, "missing") {
		return 0, fmt.Errorf("GET %s: 404 Not Found", url)
	}
	return 100 * len(url), nil
}

// steppingClock returns a fake clock that a goroutine moves on by step
// whenever something waits for it, until ctx ends: a run under a rate
// then takes no time, and the examples print exactly where each start
// fell.
func steppingClock(ctx context.Context, step time.Duration) *clockwork.FakeClock {
	clock := clockwork.NewFakeClock()
	go func() {
		for clock.BlockUntilContext(ctx, 1) == nil {
			clock.Advance(step)
		}
	}()
	return clock
}

// A thousand pages to fetch, with at most 5 requests in flight and at most
// one started per second, as the site's quota asks. On the real clock the
// run takes 999 seconds (the first request starts at once); this example
// runs it on a fake clock that a goroutine moves on by a second whenever
// the run waits for it, so it takes no time at all.
func ExampleRunOnEach() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := steppingClock(ctx, time.Second)

	var fetched atomic.Int64
	start := clock.Now()
	err := trimeter.RunOnEach(ctx, pageURLs(1000), func(ctx context.Context, url string) error {
		if _, err := fetchSize(ctx, url); err != nil {
			return err
		}
		fetched.Add(1)
		return nil
	}, trimeter.MaxAtOnce(5), trimeter.MaxPerSecond(1), trimeter.WithClock(clock))

	fmt.Println(fetched.Load(), "pages fetched in", clock.Since(start), "error:", err)
	// Output: 1000 pages fetched in 16m39s error: <nil>
}

// Each result comes to the loop as soon as its call has finished, in the
// order the calls finish. Here the loop adds up the sizes; a break or a
// return in it would cancel the fetches still running.
func ExampleAMap() {
	pages, bytes := 0, 0
	for size, err := range trimeter.AMap(context.Background(), pageURLs(20), fetchSize, trimeter.MaxAtOnce(5)) {
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		pages++
		bytes += size
	}
	fmt.Println(pages, "pages,", bytes, "bytes")
	// Output: 20 pages, 53000 bytes
}

// With Ordered the results come in input order, whatever order the calls
// finish in.
func ExampleOrdered() {
	words := slices.Values([]string{"iambic", "trimeter", "gives", "you", "tools"})
	upper := func(_ context.Context, w string) (string, error) { return strings.ToUpper(w), nil }
	for w, err := range trimeter.AMap(context.Background(), words, upper, trimeter.MaxAtOnce(3), trimeter.Ordered()) {
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Println(w)
	}
	// Output:
	// IAMBIC
	// TRIMETER
	// GIVES
	// YOU
	// TOOLS
}

// Two starts a second on average, and up to three at once after a quiet
// spell: the bucket starts full, so the first three tasks start together,
// and the rest one every half second, as tokens come.
func ExampleMaxBurst() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := steppingClock(ctx, 500*time.Millisecond)

	var starts []time.Duration // MaxAtOnce(1): one task at a time appends
	start := clock.Now()
	err := trimeter.RunOnEach(ctx, slices.Values([]string{"a", "b", "c", "d", "e", "f", "g"}), func(context.Context, string) error {
		starts = append(starts, clock.Since(start))
		return nil
	}, trimeter.MaxAtOnce(1), trimeter.MaxPerSecond(2), trimeter.MaxBurst(3), trimeter.WithClock(clock))

	fmt.Println(starts, err)
	// Output: [0s 0s 0s 500ms 1s 1.5s 2s] <nil>
}

// A meter given with WithMeter counts every call that shares it: here an
// API allows one request a second in all, and two runs that use it one
// after the other take turns in the same bucket.
func ExampleWithMeter() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := steppingClock(ctx, time.Second)
	api := throttle.NewRate(1, 1, throttle.WithClock(clock))

	start := clock.Now()
	for _, report := range []string{"orders", "invoices"} {
		var starts []time.Duration
		err := trimeter.RunOnEach(ctx, slices.Values([]int{1, 2, 3}), func(context.Context, int) error {
			starts = append(starts, clock.Since(start))
			return nil
		}, trimeter.MaxAtOnce(1), trimeter.WithMeter(api))
		fmt.Println(report, starts, err)
	}
	fmt.Println("started through the meter:", api.Stats().Started)
	// Output:
	// orders [0s 1s 2s] <nil>
	// invoices [3s 4s 5s] <nil>
	// started through the meter: 6
}

// Outcomes keeps going past failures and tells which input each outcome
// belongs to: its position and its value.
func ExampleOutcomes() {
	urls := slices.Values([]string{
		"https://example.com/",
		"https://example.com/missing",
		"https://example.com/about",
	})
	for in, outcome := range trimeter.Outcomes(context.Background(), urls, fetchSize, trimeter.MaxAtOnce(5), trimeter.Ordered()) {
		size, err := outcome.Unwrap()
		if err != nil {
			fmt.Printf("#%d %s: error: %v\n", in.Index, in.Value, err)
			continue
		}
		fmt.Printf("#%d %s: %d bytes\n", in.Index, in.Value, size)
	}
	// Output:
	// #0 https://example.com/: 2000 bytes
	// #1 https://example.com/missing: error: GET https://example.com/missing: 404 Not Found
	// #2 https://example.com/about: 2500 bytes
}

// With KeepGoing, RunOnEach runs every input and returns every failure,
// each with the position of its input.
func ExampleKeepGoing() {
	urls := slices.Values([]string{
		"https://example.com/",
		"https://example.com/missing",
		"https://example.com/about",
		"https://example.com/missing-too",
	})
	err := trimeter.RunOnEach(context.Background(), urls, func(ctx context.Context, url string) error {
		_, err := fetchSize(ctx, url)
		return err
	}, trimeter.MaxAtOnce(2), trimeter.KeepGoing())
	fmt.Println(err)
	// Output:
	// input 1: GET https://example.com/missing: 404 Not Found
	// input 3: GET https://example.com/missing-too: 404 Not Found
}

// RunAll calls a few functions at once and returns their results in the
// order of the functions. Here the first one finishes last.
func ExampleRunAll() {
	thirdDone := make(chan struct{})
	results, err := trimeter.RunAll(context.Background(), slices.Values([]func(context.Context) (string, error){
		func(context.Context) (string, error) { <-thirdDone; return "profile", nil },
		func(context.Context) (string, error) { return "orders", nil },
		func(context.Context) (string, error) { defer close(thirdDone); return "settings", nil },
	}))
	fmt.Println(results, err)
	// Output: [profile orders settings] <nil>
}

// RunAny returns the first success and cancels the calls still running:
// here a mirror that would hang until cancelled.
func ExampleRunAny() {
	notes, err := trimeter.RunAny(context.Background(), slices.Values([]func(context.Context) (string, error){
		func(ctx context.Context) (string, error) { <-ctx.Done(); return "", ctx.Err() },
		func(context.Context) (string, error) { return "", errors.New("mirror 2: connection refused") },
		func(context.Context) (string, error) { return "release notes, from mirror 3", nil },
	}))
	fmt.Println(notes, err)
	// Output: release notes, from mirror 3 <nil>
}

// Pages from three hosts, four requests in flight in all but only one at a
// time per host: PerKey applies its limits to each host separately, and an
// input whose host is busy waits aside while inputs of other hosts go
// ahead of it.
func ExamplePerKey() {
	urls := []string{
		"https://a.example/1", "https://a.example/2", "https://b.example/1",
		"https://a.example/3", "https://c.example/1", "https://b.example/2",
	}
	hostOf := func(url string) string { return strings.Split(url, "/")[2] }

	var mu sync.Mutex
	inFlight, most := map[string]int{}, map[string]int{}
	fetch := func(ctx context.Context, url string) (int, error) {
		host := hostOf(url)
		mu.Lock()
		inFlight[host]++
		most[host] = max(most[host], inFlight[host])
		mu.Unlock()
		defer func() {
			mu.Lock()
			inFlight[host]--
			mu.Unlock()
		}()
		return fetchSize(ctx, url)
	}

	for in, out := range trimeter.Outcomes(context.Background(), slices.Values(urls), fetch,
		trimeter.MaxAtOnce(4),
		trimeter.PerKey(hostOf, trimeter.MaxAtOnce(1)),
		trimeter.Ordered(), // print in input order, whatever order they finish in
	) {
		fmt.Println(in.Index, in.Value, out.Value, out.Err)
	}
	fmt.Println("most at once per host:", most)
	// Output:
	// 0 https://a.example/1 1900 <nil>
	// 1 https://a.example/2 1900 <nil>
	// 2 https://b.example/1 1900 <nil>
	// 3 https://a.example/3 1900 <nil>
	// 4 https://c.example/1 1900 <nil>
	// 5 https://b.example/2 1900 <nil>
	// most at once per host: map[a.example:1 b.example:1 c.example:1]
}

// A crawler whose input is the links it finds: the input sequence waits
// for the run's own results before it yields again, and ends once every
// page found has been fetched. Each host gets one request at a time; a
// page waiting for its host starts as soon as the host is free, even while
// the sequence waits.
func ExamplePerKey_crawl() {
	site := map[string][]string{ // each page's links
		"a.example/":  {"a.example/x", "a.example/y", "b.example/"},
		"a.example/x": {"b.example/z"},
		"a.example/y": nil,
		"b.example/":  {"a.example/x", "b.example/z"},
		"b.example/z": {"a.example/"},
	}
	hostOf := func(url string) string { return strings.Split(url, "/")[0] }
	linksOf := func(_ context.Context, url string) ([]string, error) { return site[url], nil }

	frontier := make(chan string, len(site)) // room for every page: a send never blocks
	seen := map[string]bool{"a.example/": true}
	frontier <- "a.example/"
	pending := 1 // pages sent to the frontier and not fetched yet
	found := func(yield func(string) bool) {
		for url := range frontier {
			if !yield(url) {
				return
			}
		}
	}

	var fetched []string
	for in, out := range trimeter.Outcomes(context.Background(), found, linksOf,
		trimeter.MaxAtOnce(4),
		trimeter.PerKey(hostOf, trimeter.MaxAtOnce(1)),
	) {
		fetched = append(fetched, in.Value)
		for _, link := range out.Value {
			if !seen[link] {
				seen[link] = true
				pending++
				frontier <- link
			}
		}
		if pending--; pending == 0 {
			close(frontier) // nothing left to find: the sequence ends
		}
		// To stop early, close(frontier) before the break: the break
		// waits for the sequence, which waits on the frontier.
	}
	slices.Sort(fetched)
	fmt.Println(fetched)
	// Output: [a.example/ a.example/x a.example/y b.example/ b.example/z]
}

// Under Retry a failed attempt is tried again after a backoff, through
// the same limits: here a service that times out twice answers on the
// third attempt, and one that never answers fails with a *RetryError that
// holds every attempt's error. The backoff waits on a fake clock that a
// goroutine moves on, so the example takes no time.
func ExampleRetry() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := steppingClock(ctx, time.Second) // every backoff here is under a second

	var mu sync.Mutex
	attempts := map[string]int{}
	call := func(_ context.Context, service string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		attempts[service]++
		if service == "down" || attempts[service] < 3 {
			return "", fmt.Errorf("%s: timeout", service)
		}
		return service + ": ok", nil
	}

	services := slices.Values([]string{"flaky", "down"})
	for in, out := range trimeter.Outcomes(ctx, services, call,
		trimeter.Retry(3), trimeter.Backoff(100*time.Millisecond, time.Second),
		trimeter.WithClock(clock), trimeter.Ordered()) {
		var retryErr *trimeter.RetryError
		if errors.As(out.Err, &retryErr) {
			fmt.Printf("%s: %v; attempts' errors: %q\n", in.Value, out.Err, retryErr.Errs)
			continue
		}
		fmt.Println(out.Value, out.Err)
	}
	// Output:
	// flaky: ok <nil>
	// down: down: timeout (after 3 attempts); attempts' errors: ["down: timeout" "down: timeout" "down: timeout"]
}

package redismeter_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/trimeter-go/trimeter"
	"github.com/trimeter-go/trimeter/redismeter"
	"github.com/trimeter-go/trimeter/throttle"
)

// Every process that runs this shares two limits kept in Redis: five
// starts a second under the key "api", and ten requests in flight under
// "db". (It needs a Redis server on localhost:6379, so it is compiled but
// not run by the tests; examples/shared runs a whole scenario.)
func ExampleNewRate() {
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer client.Close()
	api := redismeter.NewRate(client, "api", 5, 1)
	db := redismeter.NewConcurrency(client, "db", 10, 30*time.Second)
	defer db.Close()

	orders := []int{1001, 1002, 1003}
	err := trimeter.RunOnEach(context.Background(), slices.Values(orders), func(ctx context.Context, id int) error {
		return nil // look the order up
	}, trimeter.MaxAtOnce(8), trimeter.WithMeter(api), trimeter.WithMeter(db))
	if err != nil {
		log.Print(err) // wraps redismeter.ErrUnavailable if Redis could not be reached
	}
}

// One limit per host, shared by every process: under PerKey, the bucket
// of host h is the meter's of key "crawl:h", kept in Redis under
// "rate:{crawl:h}". (Compiled, not run: it needs a Redis server.)
func ExampleRate_ForKey() {
	client := redis.NewClient(&redis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer client.Close()
	perHost := redismeter.NewRate(client, "crawl", 2, 1)

	type page struct{ host, path string }
	pages := []page{{"a.example", "/"}, {"b.example", "/"}, {"a.example", "/about"}}
	hostOf := func(p page) string { return p.host }
	err := trimeter.RunOnEach(context.Background(), slices.Values(pages), func(ctx context.Context, p page) error {
		return nil // fetch the page
	}, trimeter.MaxAtOnce(8), trimeter.PerKey(hostOf, trimeter.WithMeter(perHost)))
	if err != nil {
		log.Print(err)
	}
}

// A meter built with a bad value does not panic: Err names the value, and
// every call that uses the meter ends with an error that wraps it.
func ExampleNewRate_badValue() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	m := redismeter.NewRate(client, "api", 0, 1)
	fmt.Println(m.Err())
	fmt.Println(errors.Is(m.Err(), throttle.ErrBadValue))
	// Output:
	// throttle: bad value: redismeter: NewRate(perSecond 0): must be positive and finite
	// true
}

// Under the default failure policy, a meter whose Redis cannot be reached
// returns an error that wraps ErrUnavailable and names the key.
func ExampleErrUnavailable() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, ContextTimeoutEnabled: true})
	defer client.Close()
	m := redismeter.NewRate(client, "api", 5, 1, redismeter.CallTimeout(200*time.Millisecond))
	_, err := m.Acquire(context.Background())
	fmt.Println(errors.Is(err, redismeter.ErrUnavailable))
	// Output: true
}

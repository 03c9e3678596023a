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

// redisAddr is the address of the Redis server: in a program, wherever
// its Redis runs ("localhost:6379", say); in these examples, a
// redis-server that the tests start for them.
func redisAddr() string { return redismeter.RedisAddrForExamples() }

// Every process that runs this shares two limits kept in Redis: five
// starts a second under the key "api", and ten requests in flight under
// "db". Run by several processes at once, their orders start at most five
// a second in all. (examples/shared runs a whole scenario with three
// processes.)
func ExampleNewRate() {
	client := redis.NewClient(&redis.Options{Addr: redisAddr(), ContextTimeoutEnabled: true})
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
		return
	}
	fmt.Println("orders started through the meter:", api.Stats().Started)
	// Output: orders started through the meter: 3
}

// At most two reports run at once across every process that uses the key
// "reports". Two meters on the same key stand in here for two processes:
// the slots that one holds are taken for the other too. While a task
// runs, its process renews the lease on its slot; the slots of a process
// that dies come back within a lease.
func ExampleNewConcurrency() {
	client := redis.NewClient(&redis.Options{Addr: redisAddr(), ContextTimeoutEnabled: true})
	defer client.Close()
	here := redismeter.NewConcurrency(client, "reports", 2, 30*time.Second)
	defer here.Close()
	there := redismeter.NewConcurrency(client, "reports", 2, 30*time.Second)
	defer there.Close()

	ctx := context.Background()
	var held []throttle.Permit
	for range 2 {
		p, err := here.Acquire(ctx)
		if err != nil {
			log.Print(err) // wraps redismeter.ErrUnavailable if Redis could not be reached
			return
		}
		held = append(held, p)
	}
	p, _, err := there.TryAcquire(ctx)
	fmt.Println("with two reports running here, a third starts there:", p != nil, err)

	held[0].Done(throttle.Outcome{Status: throttle.Succeeded})
	p, _, err = there.TryAcquire(ctx)
	fmt.Println("once one is done, it starts:", p != nil, err)
	if p != nil {
		p.Done(throttle.Outcome{Status: throttle.Succeeded})
	}
	held[1].Done(throttle.Outcome{Status: throttle.Succeeded})
	fmt.Println("in flight here:", here.Stats().InFlight, "there:", there.Stats().InFlight)
	// Output:
	// with two reports running here, a third starts there: false <nil>
	// once one is done, it starts: true <nil>
	// in flight here: 0 there: 0
}

// One limit per host, shared by every process: under PerKey, the bucket
// of host h is the meter's of key "crawl:h", kept in Redis under
// "rate:{crawl:h}".
func ExampleRate_ForKey() {
	client := redis.NewClient(&redis.Options{Addr: redisAddr(), ContextTimeoutEnabled: true})
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
		return
	}
	fmt.Println("pages started, over both hosts:", perHost.Stats().Started)
	// Output: pages started, over both hosts: 3
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

package redismeter_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/trimeter-go/trimeter/redismeter"
	"github.com/trimeter-go/trimeter/throttle"
)

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

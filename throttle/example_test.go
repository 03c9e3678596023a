package throttle_test

import (
	"context"
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/trimeter-go/trimeter/throttle"
)

func ExampleNewRate() {
	// A fake clock makes the example's timing exact; leave WithClock out
	// to use the real one.
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := clockwork.NewFakeClockAt(start)
	// Two starts per second, and up to three at once after a quiet spell.
	r := throttle.NewRate(2, 3, throttle.WithClock(clock))

	ctx := context.Background()
	for i := range 5 {
		p, wait, err := r.TryAcquire(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		if p == nil {
			fmt.Printf("task %d waits %v\n", i, wait)
			clock.Advance(wait)
			p, _, _ = r.TryAcquire(ctx)
		}
		fmt.Printf("task %d starts at +%v\n", i, clock.Since(start))
		p.Done(throttle.Outcome{Status: throttle.Succeeded})
	}
	// Output:
	// task 0 starts at +0s
	// task 1 starts at +0s
	// task 2 starts at +0s
	// task 3 waits 500ms
	// task 3 starts at +500ms
	// task 4 waits 500ms
	// task 4 starts at +1s
}

func ExampleRate_SetRate() {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := clockwork.NewFakeClockAt(start)
	r := throttle.NewRate(1, 1, throttle.WithClock(clock))
	p, _ := r.Acquire(context.Background())
	p.Done(throttle.Outcome{Status: throttle.Succeeded})
	fmt.Println("next token in", r.Delay(1))

	if err := r.SetRate(4); err != nil {
		fmt.Println(err)
	}
	fmt.Println("next token in", r.Delay(1))
	fmt.Println(r.SetRate(0))
	// Output:
	// next token in 1s
	// next token in 250ms
	// throttle: bad value: SetRate(0): must be positive and finite
}

func ExampleNewConcurrency() {
	// At most two attempts at once, across every caller sharing c.
	c := throttle.NewConcurrency(2)
	ctx := context.Background()

	a, _ := c.Acquire(ctx)
	b, _ := c.Acquire(ctx)
	if p, wait, _ := c.TryAcquire(ctx); p == nil {
		fmt.Printf("full: wait %v (until a permit is done)\n", wait)
	}

	a.Done(throttle.Outcome{Status: throttle.Succeeded, Latency: 20 * time.Millisecond})
	p, _, _ := c.TryAcquire(ctx)
	fmt.Println("after one is done, a third starts:", p != nil)

	// Lowering the limit cancels nothing: the two in flight finish first.
	_ = c.SetLimit(1)
	b.Done(throttle.Outcome{Status: throttle.Succeeded})
	p.Done(throttle.Outcome{Status: throttle.Succeeded})
	s := c.Stats()
	fmt.Printf("limit %d, in flight %d, started %d\n", s.Limit, s.InFlight, s.Started)
	// Output:
	// full: wait 0s (until a permit is done)
	// after one is done, a third starts: true
	// limit 1, in flight 0, started 3
}

func ExampleNewAdaptive() {
	a := throttle.NewAdaptive(1, 100)
	ctx := context.Background()

	// A service that answers in 10ms however many requests it gets lets
	// the limit grow; one that pushes back halves it.
	run := func(n int, o throttle.Outcome) {
		var held []throttle.Permit
		for range n {
			for {
				p, _, _ := a.TryAcquire(ctx)
				if p == nil {
					break
				}
				held = append(held, p)
			}
			held[0].Done(o)
			held = held[1:]
		}
		for _, p := range held {
			p.Done(throttle.Outcome{Status: throttle.Canceled})
		}
	}
	run(15, throttle.Outcome{Status: throttle.Succeeded, Latency: 10 * time.Millisecond})
	fmt.Println("limit after 15 fast answers:", a.Stats().Limit)
	run(1, throttle.Outcome{Status: throttle.PushedBack})
	fmt.Println("limit after a push-back:", a.Stats().Limit)
	// Output:
	// limit after 15 fast answers: 16
	// limit after a push-back: 8
}

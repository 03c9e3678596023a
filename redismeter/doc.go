// Package redismeter provides meters (see package
// github.com/trimeter-go/trimeter/throttle) whose state lives in Redis, so
// that one limit holds across every process that uses the same key: two
// containers that each run
//
//	trimeter.RunOnEach(ctx, inputs, fn, trimeter.WithMeter(redismeter.NewRate(client, "api", 5, 1)))
//
// start at most five tasks per second between them, not five each.
//
//   - [Rate] is a token bucket (GCRA) kept in Redis by a Lua script of
//     this package, whose arithmetic is exact in whole nanoseconds: in any
//     window of length t, at most burst + rate·t starts, summed over all
//     processes. One Redis round trip per start.
//   - [Concurrency] lets at most n tasks run at once across all processes.
//     Each running task holds a lease in Redis that its process renews
//     while the task runs; the slots of a process that dies come back
//     within one lease, and if Redis loses the slots, the next renewal
//     counts the running tasks again.
//
// Both give one limit per key through ForKey (for trimeter.PerKey), keep a
// push-back pause (Outcome.Pause) in Redis so that every process holds
// off, report their counts through Stats, and report a bad constructor
// value through Err instead of panicking. Limits in Redis are timed by the
// Redis server's clock, so the processes' clocks need not agree.
//
// The meters call no code of their users but the Redis client (and its
// hooks), the clock of [WithClock] and the context given to Acquire or
// TryAcquire. A panic in one of them during Acquire, TryAcquire or a
// permit's Done goes on to the caller of that method (a trimeter run
// raises it as its own panic). One in a goroutine of the meter's own (a
// Concurrency's lease renewals, and the give-backs it makes in the
// background) ends the process, as any panic left unrecovered does.
//
// # When Redis is down or slow
//
// Every Redis call has a timeout ([CallTimeout], one second by default).
// What a failed call means is a policy chosen when the meter is built. By
// default Acquire returns an error that wraps [ErrUnavailable] and names
// the meter's key, so that a fail-fast run ends with it. With
// [FallbackShare], the meter instead admits tasks through a meter of its
// own process at a share of the limit, and asks Redis again a second
// later. A meter never admits tasks without a limit.
//
// go-redis applies a context's deadline to a command already sent only
// when the client is built with ContextTimeoutEnabled: set it, so that
// CallTimeout (and a context's own earlier deadline) ends a Redis call in
// flight. Otherwise the client's own ReadTimeout and WriteTimeout (three
// seconds by default) bound each call. go-redis watches deadlines, not
// cancellation: a context cancelled while a call is in flight ends it at
// CallTimeout at the latest. Waits between calls always end at once when
// the context ends.
package redismeter

// Package throttle holds the meters that decide when a task may start: a
// token bucket ([Rate]), a limit on attempts running at once
// ([Concurrency]), and a limit that finds its own value from how attempts
// end ([Adaptive]). Every meter is safe for concurrent use, so one meter
// may be shared by many calls of package trimeter (trimeter.WithMeter) and
// by any other code: they all count against the same limit.
//
// A task asks a meter for a [Permit] before it starts (Acquire, which
// waits, or TryAcquire, which does not) and hands it back with Done when
// it has ended, saying how: the meter frees a slot, gives an unused token
// back, learns from the latency, or holds off every start for a
// push-back's pause. Users may write their own meters against the small
// [Meter] interface.
//
// Waiting is first come, first served, and only the first waiter watches
// the clock, so a crowd of waiters costs what one does. A waiter whose
// context ends leaves at once and takes nothing. Limits change while tasks
// run (SetRate, SetBurst, SetLimit) and take effect from the next start;
// lowering one never cancels a running task. A meter built with a bad
// value does not panic: it reports an error wrapping [ErrBadValue] from
// Err and from every Acquire. So does the zero value of a meter type, which
// only its New function makes ready.
//
// Meters read time from a clockwork.Clock ([WithClock]), so tests run
// them on a fake clock and assert rates exactly on virtual time. The
// meters call no code of their users but that clock and the Err and Done
// methods of the context given to Acquire or TryAcquire. If one of these
// panics, the panic goes on to the caller of the method that called it,
// and the meter stays usable: its lock is released, a waiter leaves the
// line, and Done, which calls the clock alone, still frees the permit's
// slot and counts its end, though a Rate's Unused give-back and the
// Outcome's Pause are then lost.
package throttle

// Package trimeter calls a function on every value of an iterator, many
// calls at a time, under limits on how many run at once and how many start
// each second, and hands back the results as they finish, as Go 1.23
// iterators.
//
// # Entry points
//
// Four functions cover the common shapes; each takes its inputs as an
// iter.Seq, so the inputs may be a slice (slices.Values), a channel, a
// generator or an infinite stream:
//
//   - [RunOnEach] calls fn on each input and waits: a concurrent for-loop.
//   - [AMap] yields fn's results as they finish (or in input order, with
//     [Ordered]): a concurrent map whose consumer is a range loop.
//   - [RunAll] calls a sequence of functions and returns their results in
//     order, like Promise.all; [RunAny] returns the first success.
//   - [Then] chains a stage after another, for pipelines; [Outcomes] and
//     [ThenOutcomes] keep going past failures and tell which input each
//     outcome belongs to.
//
// # Scheduling
//
// A task starts when three things hold: a slot is free ([MaxAtOnce]), every
// meter lets it through (the rate of [MaxPerSecond], shared meters given
// with [WithMeter], and the limits of its key under [PerKey]), and no
// push-back pause is in force ([Pushback]). Its input is pulled from the
// sequence once a slot is free, and then held until the pause in force, if
// any, is over (so a sequence that has ended ends the run at once) and,
// under a rate or a meter, until its permit comes. So every input held has
// a slot of its own (but for the inputs that wait aside for their key under
// [PerKey]: see [Lookahead]), and nothing is read ahead beyond the slots:
// an infinite input is fine and memory is bounded by the window of tasks,
// not by the input. With MaxAtOnce above 1 and no rate, meter or PerKey,
// the inputs pulled on free slots wait in a queue for a worker to take
// them, so when many slots come free at once (at the start of a run, say)
// up to MaxAtOnce inputs may be pulled before their calls begin; with no
// MaxAtOnce (and no rate, meter or PerKey), where every input may start as
// soon as it is pulled, up to 16 wait there while workers come for them;
// on every other path at most one input is held beyond the tasks running.
//
// A task keeps its slot until its result has been handed to the consumer
// (or into the buffer of [BufferSize]): a slow consumer slows the work
// rather than piling up results. Under [Ordered] a result also waits for
// the ones before it, still holding its slot, so the window stays bounded
// even when the task at its head is slow.
//
// Rate limits are exact: a token bucket of MaxBurst tokens refilled at the
// rate lets at most burst + rate·t tasks start in any window of length t,
// retries included, counted at the moments their tokens are granted, and
// the tokens of every meter an attempt needs are taken at the instant it
// starts. The attempt itself begins a few microseconds later; from
// 1,000/s up the default burst keeps a margin for that (see MaxBurst).
//
// # Stopping
//
// By default a run is fail-fast, like errgroup: the first error cancels the
// context given to the calls still running (context.Cause returns that
// error, as with errgroup.WithContext), nothing more starts, and the error
// is reported once. [KeepGoing] and the outcome functions report every
// failure instead. Cancelling the parent context stops the run promptly
// with its error; the calls' context, made from the parent, reports the
// parent's own error and cause (context.DeadlineExceeded for a deadline).
// A parent whose Err reports an end when the run begins stops it before
// anything starts; after that, the parent counts as ended once its Done
// channel is closed (a run that ends just before, while the parent's Err
// already reports the end, ends as it would have without it). The run
// then leaves the cancel of the calls' context to the context package,
// which may make it a moment after the run has returned, and never
// cancels that context first; a failure that cancelled it before the
// parent ended stays the run's error, as it stays the calls' cause (but
// for a failure and a parent's end at the same instant, which can split).
// A run that ends for any other reason (a break, [RunAny]'s answer, a
// panic) cancels the calls still running with a cause of its own.
//
// Breaking out of a range loop over [AMap], [Outcomes], [Then] or
// [ThenOutcomes] cancels the calls in flight, stops the input sequence (its
// deferred cleanup runs), and returns only once every goroutine of the run
// has returned. A call that ignores its context delays that return until
// it does.
//
// A panic in a task or in the input sequence is never let loose in a worker
// goroutine: it stops the run, and once every goroutine has returned it is
// raised again in the caller's goroutine as a [*PanicError] that carries the
// original value and the stack where it happened. runtime.Goexit (as
// t.FailNow calls) is handled the same way, with [ErrGoexit] as the value.
//
// Bad options are reported as an error wrapping [ErrBadOption] that names
// the option and the value, returned or yielded before anything runs; so
// is a nil ctx, function or input sequence.
//
// # Threads
//
// The goroutine that calls a run, or ranges over its results, may be
// locked to its OS thread (runtime.LockOSThread). fn runs in the run's
// workers, each of which runs many tasks: it must return with its
// goroutine unlocked (as many UnlockOSThread calls as LockOSThread calls),
// and so must the input sequence, which may run in the workers too. On the
// paths where the workers pull the input through iter.Pull's coroutine
// (with PerKey, or with a rate or a meter and no MaxAtOnce or one above
// 1), the Go runtime aborts the process when a worker left locked
// pulls next, a fatal error that no recover can catch.
//
// # Time
//
// All waiting (rate limits, pauses, retry backoff) reads the clock of
// [WithClock], a clockwork.Clock; tests pass a fake clock and advance it.
package trimeter

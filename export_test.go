package trimeter

import (
	"context"
	"testing"
)

// PaceOnFakeClocks makes runs on a fake clock pace their turn (pacing.go)
// as runs on the real clock do, until tb ends. Tests that use it must not
// run in parallel.
func PaceOnFakeClocks(tb testing.TB) {
	pacedOnFakeClocks = true
	tb.Cleanup(func() { pacedOnFakeClocks = false })
}

// RouteOf says which path a call with opts takes, for inputs of type T
// and results of type R, with a consumer (AMap and the like) or without
// one (RunOnEach): "handoff" (serial.go, its results handed over through
// handoff.go), "serial" (serial.go, its results through the outbox or
// dropped), "fed" (feeder.go) or "starter" (starter.go); or the error of a
// bad option. Nothing runs.
func RouteOf[T, R any](consumer bool, opts ...Option) string {
	mode := discard
	if consumer {
		mode = toConsumer
	}
	fn := func(context.Context, T) (R, error) { panic("not called") }
	e, err := prepare(context.Background(), struct{}{}, fn, opts, mode, nil, resolveKey[T])
	switch {
	case err != nil:
		return err.Error()
	case e.handsOver():
		return "handoff"
	case e.serial():
		return "serial"
	case e.fed:
		return "fed"
	}
	return "starter"
}

// KeptIdle is how many idle workers a run without MaxAtOnce keeps.
const KeptIdle = keptIdle

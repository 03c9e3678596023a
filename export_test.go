package trimeter

import "testing"

// PaceOnFakeClocks makes runs on a fake clock pace their turn (pacing.go)
// as runs on the real clock do, until tb ends. Tests that use it must not
// run in parallel.
func PaceOnFakeClocks(tb testing.TB) {
	pacedOnFakeClocks = true
	tb.Cleanup(func() { pacedOnFakeClocks = false })
}

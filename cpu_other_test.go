//go:build !unix

package trimeter_test

import "time"

// benchCPUTime reports that the platform gives no CPU time.
func benchCPUTime() (time.Duration, bool) { return 0, false }

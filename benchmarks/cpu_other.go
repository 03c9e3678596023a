//go:build !unix

package benchmarks

import "time"

// cpuTime reports that the platform gives no CPU time.
func cpuTime() (time.Duration, bool) { return 0, false }

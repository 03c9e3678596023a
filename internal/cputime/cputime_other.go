//go:build !unix

package cputime

import "time"

// Used reports that the platform gives no CPU time.
func Used() (time.Duration, bool) { return 0, false }

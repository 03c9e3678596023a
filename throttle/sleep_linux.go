//go:build linux

package throttle

import (
	"syscall"
	"time"
)

// haveFineSleep says whether fineSleep wakes more precisely than a Go timer.
const haveFineSleep = true

// fineSleep blocks the calling thread for d in nanosleep(2), whose kernel
// timer is not rounded to the millisecond as the runtime's timers are.
func fineSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil) // EINTR only shortens the sleep
}

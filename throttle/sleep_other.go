//go:build !linux

package throttle

import "time"

// haveFineSleep says whether fineSleep wakes more precisely than a Go timer.
const haveFineSleep = false

func fineSleep(time.Duration) {}

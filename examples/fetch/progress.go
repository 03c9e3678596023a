package main

import (
	"fmt"
	"time"

	"github.com/trimeter-go/trimeter/examples/internal/demo"
	"github.com/trimeter-go/trimeter/throttle"
)

// progress returns the status line: pages done and failed, requests in
// flight and waiting for a permit, the start rate over the last second,
// and the time since start.
func progress(mon *throttle.Monitor, total int, start time.Time) func() string {
	var rate demo.RecentRate
	rate.Update(start, 0)
	return func() string {
		s := mon.Stats()
		now := time.Now()
		return fmt.Sprintf("done %d/%d  failed %d  in flight %d  waiting %d  rate %4.1f/s  %4.1fs",
			s.Finished, total, s.Failed, s.InFlight, s.Waiting,
			rate.Update(now, s.Started), now.Sub(start).Seconds())
	}
}

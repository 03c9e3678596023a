package main

import (
	"fmt"
	"time"

	"github.com/trimeter-go/trimeter/examples/internal/demo"
)

// progress returns the status line, one part per stage: for fetch, the
// pages done (retries aside), requests running, retries and the request
// rate over the last second; for parse and store, the pages done; then
// the time since start. It stays within 80 columns while the retries
// stay under 100 (the demo as it comes makes about 75; with more, as in
// the README's experiment with a higher per-host rate, it is a column
// longer).
func progress(m *monitors, total int, start time.Time) func() string {
	var rate demo.RecentRate
	rate.Update(start, 0)
	return func() string {
		f, p, s := m.fetch.Stats(), m.parse.Stats(), m.store.Stats()
		now := time.Now()
		return fmt.Sprintf("fetch %d/%d, %d running, %d retries, %3.0f/s | parse %d | store %d | %4.1fs",
			f.Finished-f.Retried, total, f.InFlight, f.Retried, rate.Update(now, f.Started),
			p.Finished, s.Finished, now.Sub(start).Seconds())
	}
}

package demo

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx ends, whichever comes first: a test
// server's planned latency, cut short when the client goes away.
func Sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

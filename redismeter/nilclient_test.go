package redismeter

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A nil *redis.Client (or *redis.ClusterClient) passed as the client is a
// non-nil interface: it is reported as a nil client, not dereferenced in
// Acquire.
func TestTypedNilClientIsReportedNotPanicked(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client redis.UniversalClient
	}{
		{"nil *redis.Client", (*redis.Client)(nil)},
		{"nil *redis.ClusterClient", (*redis.ClusterClient)(nil)},
		{"nil *redis.Ring", (*redis.Ring)(nil)},
	} {
		t.Run("Rate with a "+tc.name, func(t *testing.T) {
			checkBad(t, NewRate(tc.client, "k", 1, 1), "client is nil")
		})
		t.Run("Concurrency with a "+tc.name, func(t *testing.T) {
			c := NewConcurrency(tc.client, "k", 1, time.Second)
			defer c.Close()
			checkBad(t, c, "client is nil")
		})
	}
}

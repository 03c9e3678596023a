package unixnano_test

import (
	"math"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trimeter-go/trimeter/internal/unixnano"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOf(t *testing.T) {
	now := time.Unix(1_700_000_000, 5)
	if got := unixnano.Of(now); got != now.UnixNano() {
		t.Errorf("Of(%v) = %d, want %d", now, got, now.UnixNano())
	}
	if got := unixnano.Of(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)); got != math.MaxInt64 {
		t.Errorf("Of(year 3000) = %d, want the last Unix nanosecond", got)
	}
}

func TestRaiseKeepsTheLater(t *testing.T) {
	var v atomic.Int64
	later, sooner := time.Unix(100, 0), time.Unix(10, 0)
	unixnano.Raise(&v, later)
	unixnano.Raise(&v, sooner)
	if got := v.Load(); got != later.UnixNano() {
		t.Errorf("after raising to %v and then %v: %d, want the later", later, sooner, got)
	}
	unixnano.Raise(&v, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC))
	if got := v.Load(); got != math.MaxInt64 {
		t.Errorf("after raising past 2262: %d, want the last Unix nanosecond", got)
	}
}

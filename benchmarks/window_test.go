package benchmarks_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/benchmarks"
)

func ms(ts ...float64) []int64 {
	out := make([]int64, len(ts))
	for i, t := range ts {
		out[i] = int64(t * float64(time.Millisecond))
	}
	return out
}

func TestWindowExcessOnHandMadeSchedules(t *testing.T) {
	tests := []struct {
		name   string
		starts []int64
		rate   float64
		burst  int
		want   float64
	}{
		{"evenly spaced at the rate", ms(0, 100, 200, 300), 10, 1, 0},
		{"a burst the bucket holds, then the rate", ms(0, 0, 0, 100, 200), 10, 3, 0},
		{"two starts half a period apart", ms(0, 50), 10, 1, 0.5},
		{"three at once with a bucket of one", ms(0, 0, 0), 10, 1, 2},
		{"unsorted input", ms(200, 0, 100, 150), 10, 1, 1},
		{"a late burst after a quiet spell", ms(0, 1000, 1000, 1000, 1100), 10, 1, 2},
		{"excess builds up over a long window", ms(0, 90, 180, 270, 360), 10, 1, 0.4},
		{"one start", ms(5), 10, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := benchmarks.WindowExcess(tt.starts, tt.rate, tt.burst)
			if math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("WindowExcess = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWindowExcessLeavesItsInputAlone(t *testing.T) {
	starts := ms(300, 100, 200)
	benchmarks.WindowExcess(starts, 10, 1)
	if want := ms(300, 100, 200); !slices.Equal(starts, want) {
		t.Fatalf("input changed to %v, want %v", starts, want)
	}
}

func TestAchievedRate(t *testing.T) {
	tests := []struct {
		name   string
		starts []int64
		target float64
		burst  int
		want   float64
	}{
		{"exactly the rate", ms(0, 100, 200, 300, 400), 10, 1, 100},
		{"half the rate", ms(0, 200, 400), 10, 1, 50},
		{"burst not counted", ms(0, 0, 0, 100, 200), 10, 3, 100},
		{"too few starts", ms(0), 10, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := benchmarks.AchievedRate(tt.starts, tt.target, tt.burst)
			if math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("AchievedRate = %v, want %v", got, tt.want)
			}
		})
	}
}

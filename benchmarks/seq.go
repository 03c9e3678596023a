package benchmarks

import (
	"iter"
	"time"
)

// Count yields 0, 1, ..., n-1.
func Count(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

// Forever yields 0, 1, 2, ... until its consumer stops.
func Forever() iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := 0; ; i++ {
			if !yield(i) {
				return
			}
		}
	}
}

// until yields the values of in while the clock is before deadline, and
// counts them in *pulled.
func until(in iter.Seq[int], deadline time.Time, pulled *int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for v := range in {
			if !time.Now().Before(deadline) {
				return
			}
			*pulled++
			if !yield(v) {
				return
			}
		}
	}
}

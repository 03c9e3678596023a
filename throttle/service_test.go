package throttle_test

import (
	"sync"
	"time"
)

// service simulates a backend of a given capacity: up to capacity
// requests are served at once, each in base time; more wait in line, so
// that latency grows with the queue; and a request that finds twice the
// capacity in the system is pushed back at once.
type service struct {
	base time.Duration

	mu       sync.Mutex
	capacity int
	serving  int
	line     []chan struct{}
}

func newService(capacity int, base time.Duration) *service {
	return &service{capacity: capacity, base: base}
}

func (s *service) setCapacity(n int) {
	s.mu.Lock()
	s.capacity = n
	s.admitLocked()
	s.mu.Unlock()
}

// call serves one request and reports whether it was served (false: it
// was pushed back).
func (s *service) call() bool {
	s.mu.Lock()
	if s.serving+len(s.line) >= 2*s.capacity {
		s.mu.Unlock()
		return false
	}
	if s.serving < s.capacity {
		s.serving++
		s.mu.Unlock()
	} else {
		turn := make(chan struct{})
		s.line = append(s.line, turn)
		s.mu.Unlock()
		<-turn
	}
	time.Sleep(s.base)
	s.mu.Lock()
	s.serving--
	s.admitLocked()
	s.mu.Unlock()
	return true
}

func (s *service) admitLocked() {
	for s.serving < s.capacity && len(s.line) > 0 {
		s.serving++
		close(s.line[0])
		s.line = s.line[1:]
	}
}

package redismeter

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
)

// holderIDs names the slots one Concurrency (and its ForKey meters) takes:
// the process id, a random part that tells apart meters and processes
// that happen to share a process id, and a counter.
type holderIDs struct {
	prefix string
	n      atomic.Uint64
}

func newHolderIDs() *holderIDs {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail on supported systems
	return &holderIDs{prefix: strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:]) + "-"}
}

func (h *holderIDs) next() string {
	return h.prefix + strconv.FormatUint(h.n.Add(1), 10)
}

// A signal wakes every goroutine waiting on it when it fires.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel that closes at the next fire.
func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

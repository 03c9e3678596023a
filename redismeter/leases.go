package redismeter

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// leases are the slots one process holds through a Concurrency and the
// meters its ForKey returned, and the goroutine that renews them. The
// goroutine runs only while the process holds at least one slot: the
// first slot starts it, and giving back the last one (or Close) stops it.
type leases struct {
	b     *base
	lease time.Duration

	mu     sync.Mutex
	held   map[string]map[string]struct{} // sorted set key -> holder ids
	count  int
	stop   chan struct{} // closed to stop the running renewer; nil when none runs
	done   chan struct{} // closed once every renewer started so far has exited
	closed bool

	closing    context.Context // ends at close, to wake callers waiting in Acquire
	endClosing context.CancelFunc
	forgets    sync.WaitGroup // the removals later runs
}

// later runs f, a removal of a slot that a failed call may have taken, in
// a goroutine of its own that close waits for; after close, at once.
func (l *leases) later(f func()) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		f()
		return
	}
	l.forgets.Add(1) // under mu, so never once close has begun to wait
	l.mu.Unlock()
	go func() {
		defer l.forgets.Done()
		f()
	}()
}

func newLeases(b *base, lease time.Duration) *leases {
	l := &leases{b: b, lease: lease, held: make(map[string]map[string]struct{})}
	l.closing, l.endClosing = context.WithCancel(context.Background())
	return l
}

// add records a slot taken in Redis, and starts the renewer if none runs.
func (l *leases) add(key, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	ids := l.held[key]
	if ids == nil {
		ids = make(map[string]struct{})
		l.held[key] = ids
	}
	ids[id] = struct{}{}
	l.count++
	if l.stop == nil {
		l.stop = make(chan struct{})
		prev := l.done
		l.done = make(chan struct{})
		go l.renew(l.stop, prev, l.done)
	}
	return nil
}

// remove forgets a slot, and stops the renewer when it was the last.
func (l *leases) remove(key, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := l.held[key]
	if _, ok := ids[id]; !ok {
		return
	}
	delete(ids, id)
	if len(ids) == 0 {
		delete(l.held, key)
	}
	l.count--
	if l.count == 0 {
		l.halt()
	}
}

// halt stops the running renewer; l.mu is held.
func (l *leases) halt() {
	if l.stop != nil {
		close(l.stop)
		l.stop = nil
	}
}

func (l *leases) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// close stops renewing for good and waits until every renewer has exited.
func (l *leases) close() {
	l.mu.Lock()
	l.endClosing()
	l.closed = true
	l.halt()
	done := l.done
	l.mu.Unlock()
	if done != nil {
		<-done
	}
	l.forgets.Wait()
}

// renew renews every held lease each third of a lease until stop closes.
// It exits only after the renewer before it (prev), so that waiting on the
// newest done waits for all of them.
func (l *leases) renew(stop <-chan struct{}, prev, done chan struct{}) {
	defer func() {
		if prev != nil {
			<-prev
		}
		close(done)
	}()
	tick := l.b.cfg.clock.NewTicker(l.lease / 3)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.Chan():
			l.renewOnce()
		}
	}
}

// renewOnce sends one renewal per sorted set, all in one pipeline. A
// failed renewal is tried again at the next tick; a lease that ended in
// between has given its slot back, and the task that held it runs on
// uncounted.
func (l *leases) renewOnce() {
	batch := l.snapshot()
	if len(batch) == 0 {
		return
	}
	_ = l.b.detached(func(ctx context.Context) error {
		_, err := l.b.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for key, args := range batch {
				renewScript.Eval(ctx, pipe, []string{key}, args...)
			}
			return nil
		})
		return err
	})
}

// snapshot returns, for each sorted set, the renewal script's arguments:
// the lease in milliseconds and the held ids.
func (l *leases) snapshot() map[string][]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	batch := make(map[string][]any, len(l.held))
	for key, ids := range l.held {
		args := make([]any, 0, len(ids)+1)
		args = append(args, millis(l.lease))
		for id := range ids {
			args = append(args, id)
		}
		batch[key] = args
	}
	return batch
}

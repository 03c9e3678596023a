// Package changes tells the runs that watch for it that a meter of package
// throttle changed one of its limits. A run under PerKey sets an input
// aside for as long as its key's meter asks; a limit raised meanwhile
// would otherwise reach that input only when the wait was over.
package changes

import (
	"sync"
	"sync/atomic"
)

var (
	mu       sync.Mutex
	watchers = make(map[*watcher]struct{})
)

type watcher struct {
	f       func()
	stopped atomic.Bool
}

// Watch has f called after each Notify until stop is called. f runs in the
// goroutine that calls Notify, with no lock of this package held, so it
// may take locks that are not held while Notify is called. A call of f
// that had begun may end after stop returns, and one that a Notify was
// just making may begin then; a Notify that reaches f after stop has
// returned does not call it.
func Watch(f func()) (stop func()) {
	w := &watcher{f: f}
	mu.Lock()
	watchers[w] = struct{}{}
	mu.Unlock()
	return func() {
		w.stopped.Store(true)
		mu.Lock()
		delete(watchers, w)
		mu.Unlock()
	}
}

// Notify calls the f of every watcher. The caller must hold no lock that a
// watcher's f may take: a meter calls it after it has let go of its own.
func Notify() {
	mu.Lock()
	if len(watchers) == 0 {
		mu.Unlock()
		return
	}
	ws := make([]*watcher, 0, len(watchers))
	for w := range watchers {
		ws = append(ws, w)
	}
	mu.Unlock()
	for _, w := range ws {
		if !w.stopped.Load() {
			w.f()
		}
	}
}

package testclock

import (
	"bytes"
	"context"
	"runtime"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// stacks holds the buffer Idle reads the goroutines' stacks into, kept
// from one call to the next: a driver calls Idle at every step.
var stacks struct {
	sync.Mutex
	buf []byte
}

// Idle reports whether every goroutine but the caller is blocked: waiting
// on a channel, a lock, a condition variable, a sleep or a timer, rather
// than running, ready to run, in a system call, or waiting for the
// runtime itself (to start a garbage collection, say). A goroutine that
// polls with Yield counts as blocked: it waits for something else to
// happen. (One that calls runtime.Gosched itself does not: its stack is
// the very one of a goroutine that the runtime makes yield while it
// allocates, which is at work.) One that stays in a system call for good
// (os/signal.Notify's receiver, a blocking read of a file that cannot be
// polled) counts as at work, so a test binary that has one is never idle.
//
// A test that moves a fake clock whenever something waits on it may
// otherwise move it while the code under test is still at work at the
// present instant: a goroutine woken by the last step that has not run
// yet, or one that is setting a timer from a reading the step would make
// stale. Moved only once the code is idle, the clock cannot overtake it.
func Idle() bool {
	stacks.Lock()
	defer stacks.Unlock()
	if stacks.buf == nil {
		stacks.buf = make([]byte, 64<<10)
	}
	var n int
	for {
		if n = runtime.Stack(stacks.buf, true); n < len(stacks.buf) {
			break
		}
		stacks.buf = make([]byte, 2*len(stacks.buf))
	}
	rest := stacks.buf[:n]
	_, rest, _ = bytes.Cut(rest, []byte("\n\n")) // the caller's own
	for len(rest) > 0 {
		var block []byte
		block, rest, _ = bytes.Cut(rest, []byte("\n\n"))
		if busy(block) {
			return false
		}
	}
	return true
}

// busy says whether the goroutine of a runtime.Stack block is at work.
func busy(block []byte) bool {
	open, end := bytes.IndexByte(block, '['), bytes.IndexByte(block, ']')
	if open < 0 || end < open {
		return false
	}
	state := block[open+1 : end]
	// "semacquire": a wait for the runtime's own semaphores (to start a
	// garbage collection, or to stop the world, as a look at the stacks
	// does), which ends by itself. (Package sync's waits show as
	// sync.Mutex.Lock, sync.Cond.Wait, sync.WaitGroup.Wait and the like.)
	for _, s := range []string{"running", "runnable", "syscall", "preempted", "copystack", "GC assist", "semacquire"} {
		if bytes.HasPrefix(state, []byte(s)) {
			return !bytes.Contains(block, []byte(yieldFrame))
		}
	}
	return false
}

// Waiting says whether a timer, ticker or sleeper waits on c now, without
// waiting for one.
func Waiting(c *clockwork.FakeClock) bool {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return c.BlockUntilContext(ctx, 1) == nil
}

// AwaitIdle waits until Idle holds, ctx ends, or within has passed in
// real time: a goroutine that never blocks (a busy loop without
// Yield) delays each call by within and no more. It reports
// whether Idle held. A look stops every goroutine while it reads their
// stacks (60 to 160 µs with twenty to thirty of them), so after a look
// that finds one at work, AwaitIdle sleeps for several times the look's
// length: looking again at once would leave the goroutines it waits for
// little time to run.
func AwaitIdle(ctx context.Context, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		for range idleYields {
			runtime.Gosched()
		}
		start := time.Now()
		if Idle() {
			return true
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return false
		}
		time.Sleep(idleBackoff * time.Since(start))
	}
}

const (
	// idleYields is how many times AwaitIdle yields before each look:
	// enough for goroutines just woken to run up to their next wait, most
	// often.
	idleYields = 4
	// idleBackoff is how many times a look's length AwaitIdle sleeps
	// after a look that found a goroutine at work.
	idleBackoff = 4
)

// Yield yields the processor, as runtime.Gosched does, in a goroutine that
// polls for something to happen: Idle counts a goroutine that is in Yield
// as blocked.
//
//go:noinline
func Yield() { runtime.Gosched() }

// yieldFrame is how Yield's frame shows in a stack.
const yieldFrame = "/internal/testclock.Yield("

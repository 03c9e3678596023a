// Package demo holds the small pieces the example programs share: a
// console with a live status line, and the counters their test servers
// keep.
package demo

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// livePeriod is how often a live status line is redrawn.
const livePeriod = 200 * time.Millisecond

// A Console prints lines of output with one status line below them. On a
// terminal (live) the status line is redrawn in place; elsewhere, such as
// a CI log or a pipe, it is printed as a plain line now and then, so that
// logs carry no carriage returns. A Console is safe for concurrent use.
type Console struct {
	mu     sync.Mutex
	w      io.Writer
	live   bool
	status string // the status line on screen, or ""
}

// NewConsole returns a Console writing to w, redrawing in place when live.
func NewConsole(w io.Writer, live bool) *Console {
	return &Console{w: w, live: live}
}

// IsTerminal reports whether f is a terminal (a character device).
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Println prints a line of output above the status line.
func (c *Console) Println(a ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clear()
	fmt.Fprintln(c.w, a...)
	c.draw()
}

// Status shows s as the status line: redrawn in place on a live console,
// printed as a line of its own otherwise.
func (c *Console) Status(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live {
		fmt.Fprintln(c.w, s)
		return
	}
	c.clear()
	c.status = s
	c.draw()
}

// Follow shows status() every period until stop is called (every 200 ms at
// most on a live console). stop shows status() once more, ends the status
// line so that later output starts on a line of its own, and returns after
// the goroutine that Follow started has exited.
func (c *Console) Follow(period time.Duration, status func() string) (stop func()) {
	if c.live {
		period = min(period, livePeriod)
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				c.Status(status())
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		<-exited
		c.Status(status())
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.live && c.status != "" {
			fmt.Fprintln(c.w)
			c.status = ""
		}
	}
}

// clear erases the status line; c.mu is held.
func (c *Console) clear() {
	if c.live && c.status != "" {
		fmt.Fprint(c.w, "\r\033[K")
	}
}

// draw writes the status line; c.mu is held.
func (c *Console) draw() {
	if c.live && c.status != "" {
		fmt.Fprint(c.w, c.status)
	}
}

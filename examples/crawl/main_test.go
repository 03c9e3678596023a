//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/trimeter-go/trimeter/examples/internal/demotest"
)

// A SIGTERM, as a container's stop sends, ends the crawl as an interrupt
// does: the program removes its store, reports the interruption and exits
// with status 1, rather than being killed by the signal and leaving the
// store behind.
func TestSIGTERMEndsTheCrawlAndRemovesTheStore(t *testing.T) {
	tmp := t.TempDir()
	p := demotest.Start(t, "crawl", []string{"TMPDIR=" + tmp}, "-quiet")
	p.AwaitLine("Crawling ")
	if entries, err := os.ReadDir(tmp); err != nil || len(entries) != 1 {
		t.Fatalf("the temporary directory holds %d entries (%v) during the crawl, want the store", len(entries), err)
	}
	p.Signal(syscall.SIGTERM)
	status, stderr := p.Exit()
	if status != 1 || !strings.Contains(stderr, "crawl: interrupted\n") {
		t.Errorf("exit status %d, errors %q; want 1 and the crawl's cancellation", status, stderr)
	}
	if entries, err := os.ReadDir(tmp); err != nil || len(entries) != 0 {
		t.Errorf("the temporary directory holds %d entries (%v) after the crawl, want none", len(entries), err)
	}
}

// An interrupted crawl with -keep keeps its store, and names its
// directory: no summary comes to say where the pages went.
func TestAnInterruptedCrawlWithKeepNamesTheStore(t *testing.T) {
	tmp := t.TempDir()
	p := demotest.Start(t, "crawl", []string{"TMPDIR=" + tmp}, "-quiet", "-keep")
	p.AwaitLine("Crawling ")
	p.Signal(syscall.SIGTERM)
	status, stderr := p.Exit()
	entries, err := os.ReadDir(tmp)
	if err != nil || len(entries) != 1 {
		t.Fatalf("the temporary directory holds %d entries (%v) after the crawl, want the store", len(entries), err)
	}
	dir := filepath.Join(tmp, entries[0].Name())
	if status != 1 || !strings.Contains(stderr, "crawl: interrupted; the stored pages are kept in "+dir+"\n") {
		t.Errorf("exit status %d, errors %q; want 1, the interruption and the store's directory %s", status, stderr, dir)
	}
}

// An argument that is not a flag is refused, rather than silently ending
// the flags (the -keep after it would be dropped).
func TestAStrayArgumentIsRefused(t *testing.T) {
	p := demotest.Start(t, "crawl", nil, "extra", "-keep")
	status, stderr := p.Exit()
	if status != 2 || !strings.Contains(stderr, `crawl: unexpected argument "extra"`) || !strings.Contains(stderr, "-keep") {
		t.Errorf("exit status %d, errors %q; want 2, the argument named and the usage", status, stderr)
	}
}

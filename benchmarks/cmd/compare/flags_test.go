package main

import (
	"strings"
	"testing"
)

// An argument that is not a flag ends the flags: those after it are
// dropped without a word. The demos refuse such an argument; compare
// refuses it too, naming it.
func TestAStrayArgumentIsRefused(t *testing.T) {
	cfg, err := parseFlags([]string{"-quick", "extra", "-rounds", "1", "-rate=false"})
	if err == nil || !strings.Contains(err.Error(), `"extra"`) {
		t.Errorf("parseFlags accepted a stray argument (err %v): rounds %d, rate %v; want an error naming \"extra\"",
			err, cfg.rounds, cfg.rate)
	}
}

// A negative count of rounds or items is refused, naming the value,
// instead of silently becoming the default (0 asks for the default).
func TestANegativeSizeIsRefused(t *testing.T) {
	for _, args := range [][]string{{"-rounds", "-1"}, {"-items", "-5"}} {
		cfg, err := parseFlags(args)
		if err == nil || !strings.Contains(err.Error(), args[1]) {
			t.Errorf("parseFlags(%q) = rounds %d, items %d, err %v; want an error naming %s",
				args, cfg.rounds, cfg.items, err, args[1])
		}
	}
}

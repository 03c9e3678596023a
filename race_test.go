//go:build race

package trimeter_test

// raceOn: the race detector is on. Its sync.Pool drops a quarter of what
// is put back, on purpose, so pooled objects are allocated again.
const raceOn = true

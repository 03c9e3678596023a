//go:build !race

package trimeter_test

// raceOn: the race detector is on (see race_test.go).
const raceOn = false

// Package benchmarks runs the same workloads through trimeter and through
// the Go packages people reach for to do the same jobs: errgroup with
// x/time/rate, conc, pond, ants, go.uber.org/ratelimit and hand-written
// channel code. Every workload reads its input from an iter.Seq.
//
// The command in cmd/compare runs every workload round-robin, so that drift
// in the machine's speed hits every implementation alike, and prints the
// tables of the README's Performance section. The package's tests check
// that each implementation does the work it claims, exactly once.
package benchmarks

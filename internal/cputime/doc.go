// Package cputime reads the CPU time the process has used, for the
// benchmarks that report CPU per start (the root module's and those of
// the benchmarks module).
package cputime

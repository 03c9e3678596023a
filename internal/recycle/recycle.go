// Package recycle lets package trimeter ask package throttle to reuse the
// permits of a meter that no one else can reach.
//
// A throttle.Rate allocates each permit it hands out, because a permit
// given to a caller must stay valid whatever the caller does with it
// after Done. The Rate that a run builds for MaxPerSecond (its own, or one
// per key) is seen only by that run, which calls Done exactly once per
// permit and drops it then, so its permits can be reused: a rate then
// costs no allocation per start.
package recycle

// RatePermits makes m, a *throttle.Rate that has not been used yet, reuse
// its permits once they are done. Package throttle sets it when it is
// initialised; it must be called before m is shared with other
// goroutines.
var RatePermits func(m any)

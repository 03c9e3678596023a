// Package ownrate lets package trimeter tell package throttle that a Rate
// is a run's own, which no one else can reach.
//
// A throttle.Rate allocates each permit it hands out, because a permit
// given to a caller must stay valid whatever the caller does with it
// after Done, and it counts every grant and every permit done for its
// Stats. The Rate that a run builds for MaxPerSecond (its own, or one per
// key) is seen only by that run, which calls Done exactly once per permit
// and drops it then, and never reads its Stats (the run keeps counts of
// its own, for Watch). So its permits are reused, and it keeps no counts:
// a start under such a rate allocates nothing, and spends no atomic
// operations on figures no one reads.
package ownrate

// Mark makes m, a *throttle.Rate that has not been used yet, a run's own:
// it reuses its permits once they are done, and its Stats stay at zero.
// Package throttle sets Mark when it is initialised; it must be called
// before m is shared with other goroutines.
var Mark func(m any)

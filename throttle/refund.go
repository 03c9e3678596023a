package throttle

import "sort"

// refunds decides how much of a token an unused permit may give back
// without breaking the bucket's bound.
//
// Giving back a whole token is not always safe: if the bucket was full at
// some grant made after the permit's (so that grant was not held up by the
// permit's token), restoring the token would let one more start through
// than the bucket would have allowed had the permit never been granted.
// What may come back is the permit's token, less what the bucket lacked
// least at any grant made since, and at the refund itself: in time units,
// min(interval, every later grant's deficit, the deficit now). With burst
// 1 every grant finds the bucket full (deficit 0), so a permit gets its
// token back exactly when no grant was made after it.
//
// The later grants' smallest deficits are kept as a stack whose deficits
// do not fall from the oldest entry to the newest: the answer for a permit
// is the first entry granted after it. The stack holds at most 2·maxLows
// entries; beyond that all but the newest maxLows merge into one that
// answers with the smallest of their deficits, which may give back less
// than allowed but never more. The newest maxLows stay exact whatever came
// before them, so a burst of that many comes back whole. (Merging many at
// once, rather than the two oldest, moves the stack once in maxLows
// grants, not at every grant of a burst, whose deficits grow from one
// grant to the next.)
type refunds struct {
	floor uint64 // permits with a tag at or below floor get nothing back
	lows  []low
}

type low struct {
	seq     uint64 // the grant
	deficit int64  // what the bucket lacked, in nanoseconds, just before it
}

const maxLows = 32 // Rate.Acquire's doc: a burst up to this size comes back whole

// granted records grant seq, made when the bucket lacked deficit.
func (r *refunds) granted(seq uint64, deficit int64) {
	i := len(r.lows)
	for i > 0 && r.lows[i-1].deficit >= deficit {
		i--
	}
	r.lows = append(r.lows[:i], low{seq, deficit})
	if len(r.lows) > 2*maxLows {
		k := len(r.lows) - maxLows - 1 // lows[0:k+1] merge into lows[k]
		r.lows[k].deficit = r.lows[0].deficit
		r.lows = r.lows[:copy(r.lows, r.lows[k:])]
	}
}

// gap returns how many nanoseconds of token the permit of grant seq may
// give back, before the deficit at the refund itself is counted.
func (r *refunds) gap(seq uint64, interval int64) int64 {
	if seq <= r.floor {
		return 0
	}
	i := r.after(seq)
	if i == len(r.lows) {
		return interval
	}
	return min(interval, r.lows[i].deficit)
}

// after returns the place of the first entry for a grant made after seq,
// or len(r.lows) when there is none.
func (r *refunds) after(seq uint64) int {
	return sort.Search(len(r.lows), func(i int) bool { return r.lows[i].seq > seq })
}

// refunded records that the permit of grant seq gave g nanoseconds of its
// token back. What each later grant recorded is, in effect, how far the
// bucket was from letting one start too many through since it (the
// bucket's lack now, less that grant's time and an interval for every
// grant from it on that still counts): neither time nor a grant lowers
// it, and g given back lowers it by g for every grant after seq, which
// still count, and raises it for the earlier ones, which count one grant
// fewer. So the entries after seq are lowered by g, and the entries before
// them that a lowered one now undercuts go; the earlier ones stay as they
// are, short of what they could give back, never over it.
func (r *refunds) refunded(seq uint64, g int64) {
	i := r.after(seq)
	if i == len(r.lows) {
		return
	}
	for j := i; j < len(r.lows); j++ {
		r.lows[j].deficit = max(0, r.lows[j].deficit-g)
	}
	// Only the first lowered entry can fall to or below those before it:
	// the lowered ones keep their order.
	k := i
	for k > 0 && r.lows[k-1].deficit >= r.lows[i].deficit {
		k--
	}
	r.lows = r.lows[:k+copy(r.lows[k:], r.lows[i:])]
}

// reset forgets every grant up to seq: after the rate or the burst changed,
// their deficits are in other units.
func (r *refunds) reset(seq uint64) {
	r.floor = seq
	r.lows = r.lows[:0]
}

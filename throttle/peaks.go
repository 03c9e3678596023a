package throttle

import (
	"cmp"
	"slices"
)

// peaks numbers an Adaptive's grants and answers, for an attempt that ends,
// the most attempts that were in flight at once since its grant: the
// count an attempt "ran beside". Neither the count at its grant nor the
// one at its end is enough: of a batch granted together, the first
// started alone and the last ends alone, yet each ran beside the whole
// batch.
//
// The count rises only at a grant, so its highest point over a stretch of
// time comes right after one of the grants in it. peaks keeps the count
// after each grant that no later grant has matched, in a stack whose
// counts fall as the grants get later: the answer for a stretch that
// starts at grant g is the first entry at or after g. The counts in the
// stack are distinct and at most the highest count reached, so it never
// holds more entries than that.
type peaks struct {
	n   uint64 // grants so far
	top []peak
}

type peak struct {
	grant    uint64
	inFlight int
}

// granted records a grant after which inFlight attempts run, and returns
// its number.
func (p *peaks) granted(inFlight int) uint64 {
	p.n++
	for len(p.top) > 0 && p.top[len(p.top)-1].inFlight <= inFlight {
		p.top = p.top[:len(p.top)-1]
	}
	p.top = append(p.top, peak{grant: p.n, inFlight: inFlight})
	return p.n
}

// since returns the most attempts that have been in flight at once since
// grant g was made. g must be a number that granted returned.
func (p *peaks) since(g uint64) int {
	i, _ := slices.BinarySearchFunc(p.top, g, func(e peak, g uint64) int { return cmp.Compare(e.grant, g) })
	return p.top[i].inFlight // the last grant's entry is always there, and g is not after it
}

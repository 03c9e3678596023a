package benchmarks

import "fmt"

// MemoryLimit is the limit of the memory workload.
const MemoryLimit = 64

// A MemoryCase is one map implementation fed an infinite input.
type MemoryCase struct {
	Shape, Peer string // the table's row and column
	Map         Map
}

// MemoryCases lists the memory workload: an infinite input at a limit of
// 64, consumed as it finishes and in input order.
func MemoryCases() []MemoryCase {
	var cs []MemoryCase
	for _, peer := range Peers {
		if m, ok := BoundedMaps[peer]; ok {
			cs = append(cs, MemoryCase{"infinite input, as finished, n=64", peer, m})
		}
	}
	for _, peer := range Peers {
		if m, ok := OrderedMaps[peer]; ok {
			cs = append(cs, MemoryCase{"infinite input, in order, n=64", peer, m})
		}
	}
	return cs
}

// HeapGrowth consumes items results of c.Map over an infinite input, then
// stops it. It returns the largest growth of the live heap over where it
// was before the run, sampled four times while the run goes on.
func HeapGrowth(c MemoryCase, items int) (int64, error) {
	base := LiveHeap()
	var grew int64
	seen := 0
	every := max(items/4, 1)
	err := c.Map(Forever(), MemoryLimit, noop, func(int) bool {
		seen++
		if seen%every == 0 || seen == items {
			grew = max(grew, LiveHeap()-base)
		}
		return seen < items
	})
	if err == nil && seen < items {
		err = fmt.Errorf("%s, %s: the results ended after %d of %d items", c.Shape, c.Peer, seen, items)
	}
	return grew, err
}

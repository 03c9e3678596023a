package throttle

import (
	"math/rand/v2"
	"testing"
)

// peaks answers what a record of every count would: random grants and
// ends, each end checked against the highest count since its grant.
func TestPeaksMatchesAFullRecord(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var p peaks
	var counts []int             // counts[g-1]: the count right after grant g
	running := map[uint64]bool{} // grants whose attempts still run
	inFlight := 0
	for step := range 20000 {
		if inFlight == 0 || rng.IntN(2) == 0 {
			inFlight++
			g := p.granted(inFlight)
			if g != uint64(len(counts)+1) {
				t.Fatalf("step %d: grant number %d, want %d", step, g, len(counts)+1)
			}
			counts = append(counts, inFlight)
			running[g] = true
			continue
		}
		var g uint64
		for g = range running { // map order: a random one ends
			break
		}
		want := 0
		for _, c := range counts[g-1:] {
			want = max(want, c)
		}
		if got := p.since(g); got != want {
			t.Fatalf("step %d: since(%d) = %d, want %d", step, g, got, want)
		}
		delete(running, g)
		inFlight--
	}
	highest := 0
	for _, c := range counts {
		highest = max(highest, c)
	}
	if len(p.top) > highest {
		t.Errorf("the stack holds %d entries, more than the highest count, %d", len(p.top), highest)
	}
}

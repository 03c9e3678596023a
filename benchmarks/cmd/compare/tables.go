package main

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/trimeter-go/trimeter/benchmarks"
)

func printHeader(cfg config) {
	fmt.Printf("%s %s/%s, %d CPUs, GOMAXPROCS %d.\n", runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Printf("Per-item workloads: median of %d rounds, %d inputs per run (%d for I/O).\n\n",
		cfg.rounds, cfg.items, cfg.ioItems)
}

// median returns the median of the values f picks from ss.
func median[S any](ss []S, f func(S) float64) float64 {
	if len(ss) == 0 {
		return math.NaN()
	}
	vs := make([]float64, len(ss))
	for i, s := range ss {
		vs[i] = f(s)
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

func nsPerItem(s benchmarks.Sample) float64     { return s.NsPerItem }
func allocsPerItem(s benchmarks.Sample) float64 { return s.AllocsPerItem }
func efficiency(s benchmarks.Sample) float64    { return s.Efficiency }

func row(cells ...string) {
	fmt.Println("| " + strings.Join(cells, " | ") + " |")
}

// ruleRow prints the Markdown rule under a header of n columns: the
// first aligned left, the others right.
func ruleRow(n int) {
	row(append([]string{":---"}, slices.Repeat([]string{"---:"}, n-1)...)...)
}

// printPerItem prints the main table: ns per item for trimeter and each
// peer, the ratio of trimeter to the fastest peer, and allocations.
func printPerItem(noop, io results) {
	head := append([]string{"shape (ns/item)"}, benchmarks.Peers...)
	head = append(head, "trimeter / best peer", "trimeter / best library",
		"allocs/item trimeter", "allocs/item best peer")
	row(head...)
	ruleRow(len(head))
	for _, r := range []results{noop, io} {
		for _, shape := range r.shapes {
			perItemRow(shape, r.samples[shape])
		}
	}
	if len(io.shapes) > 0 {
		fmt.Println()
		printEfficiency(io)
	}
	fmt.Println()
}

func perItemRow(shape string, byPeer map[string][]benchmarks.Sample) {
	cells := []string{shape}
	for _, peer := range benchmarks.Peers {
		if ss, ok := byPeer[peer]; ok {
			cells = append(cells, fmt.Sprintf("%.0f", median(ss, nsPerItem)))
		} else {
			cells = append(cells, "–")
		}
	}
	tri, ok := byPeer[benchmarks.Trimeter]
	best := fastest(byPeer, benchmarks.Trimeter)
	library := fastest(byPeer, handRolled...)
	if !ok || best == "" {
		row(append(cells, "–", "–", "–", "–")...)
		return
	}
	ratio := func(peer string) string {
		if peer == "" {
			return "–"
		}
		return fmt.Sprintf("%.2f (%s)", median(tri, nsPerItem)/median(byPeer[peer], nsPerItem), peer)
	}
	cells = append(cells, ratio(best), ratio(library),
		fmt.Sprintf("%.2f", median(tri, allocsPerItem)),
		fmt.Sprintf("%.2f", median(byPeer[best], allocsPerItem)))
	row(cells...)
}

// printRatios prints, shape by shape, trimeter's median ns/item over each
// peer's: the ratios of the main table, against every peer.
func printRatios(noop results) {
	if len(noop.shapes) == 0 {
		return
	}
	peers := slices.DeleteFunc(slices.Clone(benchmarks.Peers), func(p string) bool { return p == benchmarks.Trimeter })
	fmt.Println("trimeter's ns/item over each peer's (below 1, trimeter is faster).")
	fmt.Println()
	row(append([]string{"trimeter / peer"}, peers...)...)
	ruleRow(len(peers) + 1)
	for _, shape := range noop.shapes {
		row(append([]string{shape}, ratiosToEach(noop.samples[shape], peers)...)...)
	}
	fmt.Println()
}

// ratiosToEach returns trimeter's median ns/item over that of each of
// peers, formatted; "–" where either has no samples.
func ratiosToEach(byPeer map[string][]benchmarks.Sample, peers []string) []string {
	cells := make([]string, len(peers))
	tri, ok := byPeer[benchmarks.Trimeter]
	for i, peer := range peers {
		ss, has := byPeer[peer]
		if !ok || !has {
			cells[i] = "–"
			continue
		}
		cells[i] = fmt.Sprintf("%.2f", median(tri, nsPerItem)/median(ss, nsPerItem))
	}
	return cells
}

// handRolled are trimeter and the peers that are no library: the "best
// library" column leaves them out.
var handRolled = []string{benchmarks.Trimeter, benchmarks.HandWritten, benchmarks.Goroutines}

// fastest returns the peer with the lowest median ns/item, leaving out
// the peers named in except; "" when none is left.
func fastest(byPeer map[string][]benchmarks.Sample, except ...string) string {
	best, bestPeer := math.Inf(1), ""
	for _, peer := range benchmarks.Peers {
		ss, ok := byPeer[peer]
		if !ok || slices.Contains(except, peer) {
			continue
		}
		if ns := median(ss, nsPerItem); ns < best {
			best, bestPeer = ns, peer
		}
	}
	return bestPeer
}

func printEfficiency(io results) {
	fmt.Println("I/O-shaped work: elapsed time over items × measured sleep / 64 (1.00 is ideal).")
	fmt.Println()
	head := append([]string{"shape"}, benchmarks.Peers...)
	row(head...)
	ruleRow(len(head))
	for _, shape := range io.shapes {
		cells := []string{shape}
		for _, peer := range benchmarks.Peers {
			if ss, ok := io.samples[shape][peer]; ok {
				cells = append(cells, fmt.Sprintf("%.3f", median(ss, efficiency)))
			} else {
				cells = append(cells, "–")
			}
		}
		row(cells...)
	}
}

// printRates prints one row per rate case: for each target, the achieved
// rate (median), the largest window excess (worst run) and the CPU time
// per start (median).
func printRates(rates map[rateKey][]benchmarks.RateSample) {
	fmt.Println("Rate limiting, real clock: achieved rate (% of target, median) / largest excess over burst + rate·t in any window (starts, worst run) / CPU per start (median).")
	fmt.Println()
	head := []string{"limiter", "burst"}
	for _, r := range Rates {
		head = append(head, fmt.Sprintf("%gk/s", r/1000))
	}
	row(head...)
	ruleRow(len(head))
	for i, c := range benchmarks.RateCases() {
		burst := fmt.Sprint(c.Burst)
		if c.Burst == 0 {
			burst = fmt.Sprintf("rate·%v", benchmarks.DefaultBurstSpan)
		}
		cells := []string{c.Name, burst}
		for _, r := range Rates {
			cells = append(cells, rateCell(rates[rateKey{i, r}]))
		}
		row(cells...)
	}
	fmt.Println()
}

func rateCell(ss []benchmarks.RateSample) string {
	if len(ss) == 0 {
		return "–"
	}
	pct := median(ss, func(s benchmarks.RateSample) float64 { return s.AchievedPct })
	excess := 0.0
	for _, s := range ss {
		excess = max(excess, s.Excess)
	}
	cpu := "n/a"
	if ss[0].HasCPU {
		ns := median(ss, func(s benchmarks.RateSample) float64 { return float64(s.CPUPerStart) })
		cpu = time.Duration(ns).Round(10 * time.Nanosecond).String()
	}
	return fmt.Sprintf("%.1f%% / %.2f / %s", pct, excess, cpu)
}

func printMemory(mem []memResult, items int) {
	if len(mem) == 0 {
		return
	}
	fmt.Printf("Memory: live heap growth (KiB) while %d items of an infinite input are consumed, MaxAtOnce 64 (pond with a queue of 64).\n\n", items)
	head := []string{"shape", "implementation", "heap growth (KiB)", "ns/item"}
	row(head...)
	ruleRow(len(head))
	for _, m := range mem {
		row(m.Shape, m.Peer, fmt.Sprintf("%.1f", float64(m.grew)/1024),
			fmt.Sprintf("%.0f", float64(m.took.Nanoseconds())/float64(items)))
	}
}

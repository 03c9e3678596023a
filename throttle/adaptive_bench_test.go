package throttle_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trimeter-go/trimeter/throttle"
)

// BenchmarkAdaptive runs one scenario on the real clock (about four
// seconds), once per process whatever b.N, and reports its figures: a
// closed loop of 128 callers goes through an Adaptive meter (min 1, max
// 128) to a simulated service of capacity C = 32 (2ms per request; beyond
// C at once requests wait in line; with 2C in the system they are pushed
// back). After 1.5s the capacity halves. It reports:
//
//   - settle-ms: how long the limit took to enter ±25% of C for good
//     (1500 means never within the phase);
//   - follow-ms: how long, after C halved, until it stayed within ±25%
//     of C/2 (1000 means never within the phase);
//   - tput%: requests served per second in the last second before the
//     change, as a percentage of a fixed Concurrency(C) against the same
//     service, measured first for one second;
//   - pushed%: the share of requests pushed back over the whole run.
func BenchmarkAdaptive(b *testing.B) {
	r := adaptiveScenario()
	b.ReportMetric(float64(r.settle.Milliseconds()), "settle-ms")
	b.ReportMetric(float64(r.follow.Milliseconds()), "follow-ms")
	b.ReportMetric(r.tput, "tput%")
	b.ReportMetric(r.pushed, "pushed%")
}

type adaptiveResult struct {
	settle, follow time.Duration
	tput, pushed   float64
}

var adaptiveScenario = sync.OnceValue(func() adaptiveResult {
	const (
		capacity  = 32
		base      = 2 * time.Millisecond
		settleFor = 1500 * time.Millisecond
		followFor = time.Second
		callers   = 4 * capacity
	)
	fixed := throttle.NewConcurrency(capacity)
	fixedRate := serveFor(newService(capacity, base), fixed, callers, time.Second, nil).rate(time.Second)

	svc := newService(capacity, base)
	a := throttle.NewAdaptive(1, 4*capacity)
	var limits limitLog
	run := serveFor(svc, a, callers, settleFor+followFor, func(at time.Duration) {
		limits.add(at, a.Stats().Limit)
		if at >= settleFor {
			svc.setCapacity(capacity / 2)
		}
	})
	pushed, served := float64(run.pushed.Load()), float64(run.served.Load())
	return adaptiveResult{
		settle: limits.settled(0, settleFor, capacity),
		follow: limits.settled(settleFor, settleFor+followFor, capacity/2),
		tput:   100 * run.rateIn(settleFor-time.Second, settleFor) / fixedRate,
		pushed: 100 * pushed / (pushed + served),
	}
})

// served records when requests were served.
type served struct {
	start  time.Time
	mu     sync.Mutex
	at     []time.Duration
	served atomic.Int64
	pushed atomic.Int64
}

func (s *served) rate(d time.Duration) float64 { return float64(s.served.Load()) / d.Seconds() }

func (s *served) rateIn(from, to time.Duration) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, at := range s.at {
		if at >= from && at < to {
			n++
		}
	}
	return float64(n) / (to - from).Seconds()
}

// serveFor runs callers in a closed loop through m to svc for d, calling
// tick every 5ms with the time since the start.
func serveFor(svc *service, m throttle.Meter, callers int, d time.Duration, tick func(time.Duration)) *served {
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{start: time.Now()}
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p, err := m.Acquire(ctx)
				if err != nil {
					return
				}
				t0 := time.Now()
				if !svc.call() {
					s.pushed.Add(1)
					p.Done(throttle.Outcome{Status: throttle.PushedBack, Latency: time.Since(t0)})
					continue
				}
				now := time.Now()
				p.Done(throttle.Outcome{Status: throttle.Succeeded, Latency: now.Sub(t0)})
				s.served.Add(1)
				s.mu.Lock()
				s.at = append(s.at, now.Sub(s.start))
				s.mu.Unlock()
			}
		}()
	}
	ticker := time.NewTicker(5 * time.Millisecond)
	for now := range ticker.C {
		at := now.Sub(s.start)
		if at >= d {
			break
		}
		if tick != nil {
			tick(at)
		}
	}
	ticker.Stop()
	cancel()
	wg.Wait()
	return s
}

// limitLog keeps the limit over time.
type limitLog struct {
	at    []time.Duration
	limit []int64
}

func (l *limitLog) add(at time.Duration, limit int64) {
	l.at = append(l.at, at)
	l.limit = append(l.limit, limit)
}

// settled returns how long after from the limit entered ±25% of target
// for good (until to); to − from when it never did.
func (l *limitLog) settled(from, to time.Duration, target int) time.Duration {
	lo, hi := float64(target)*0.75, float64(target)*1.25
	since := to
	for i, at := range l.at {
		if at < from || at >= to {
			continue
		}
		in := float64(l.limit[i]) >= lo && float64(l.limit[i]) <= hi
		switch {
		case !in:
			since = to
		case since == to:
			since = at
		}
	}
	return since - from
}

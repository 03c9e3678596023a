package trimeter

import "time"

// Pacing the turn under a rate.
//
// With MaxPerSecond and no other meter or PerKey, the starter knows, as it
// hands the turn on after taking a token, when the next token will be in
// the bucket. A worker woken at once for the turn would only pull the next
// input and sleep again until then: a wake-up of another thread for every
// start, at rates too low to fill the bucket between two timer wake-ups,
// which is most of what a start costs there. So the starter sets the run's
// turn timer for that moment instead, and wakes no one. A worker that comes
// for the turn before then (its task has ended) takes it at once, pulls the
// next input and waits for the token itself, as on the path without
// pacing, and the timer is stopped; if none comes, the timer wakes one of
// the workers that wait. Either way the token is taken, as every token is,
// at the instant its task starts. When a token is in the bucket at once, or
// the turn ends without a start, the turn is handed on at once (kick).
//
// Only rates between 200 and 5,000 per second, with room in the bucket,
// are paced, and a turn is handed on by the clock only when the next token
// is due between pacedMin and pacedMax from now. Sooner, a timer would fire
// late anyway (about a millisecond, on the real clock), and arming one per
// burst cost more than the wake-up it saves: faster rates keep the path
// without pacing. Later, wake-ups are too few to matter, and a starter
// that holds the next input while it waits for the token lets the sequence
// produce that input in the meantime. The bucket must hold pacedSlack of
// spare tokens, so that a timer that wakes late loses no throughput; a
// smaller bucket is waited for precisely, by a starter that holds the next
// input.
const (
	pacedMin   = 200 * time.Microsecond
	pacedMax   = 5 * time.Millisecond
	pacedSlack = 2 * time.Millisecond
)

// pacedOnFakeClocks lets tests pace runs on a fake clock. Otherwise only
// the real clock paces: while the turn waits for the clock, the next input
// is not pulled, so an upstream error, a panic or the end of the input is
// found only then, up to pacedMax later on the real clock, but not until a
// test moves a fake clock, which would change what such tests see.
var pacedOnFakeClocks = false

// paces says whether the run hands its turn on by the rate's clock.
func (e *engine[T, R]) paces() bool {
	if e.rate == nil || len(e.meters) > 0 || e.keyOf != nil || e.fed || e.serial() || (e.jumps && !pacedOnFakeClocks) {
		return false
	}
	l := e.cfg.limits
	interval := time.Duration(float64(time.Second) / min(l.rate, fastestRate))
	spare := time.Duration(l.bucketSize(e.clock)-1) * interval
	return interval >= pacedMin && interval <= pacedMax && spare >= pacedSlack
}

// takePacedTurn makes the calling worker the starter, once no other worker
// is. A worker that comes for the turn takes a free one at once, even one
// handed on by the clock: it is awake already, so it pulls the next input
// and waits for its token itself, and the turn timer is stopped. Workers
// that wait are woken by a kick, or by the timer when the token is due.
// It returns false, without the turn, when the worker retires instead of
// waiting (keptIdle).
func (e *engine[T, R]) takePacedTurn() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.starting {
		if e.retiresLocked(e.turnWaits) {
			if e.surplusLocked(e.turnWaits) {
				e.kickLocked()
			}
			return false
		}
		var timer <-chan time.Time
		noTimer := e.noTimer // until the timer is made
		if e.turnTimer != nil {
			timer, noTimer = e.turnTimer.Chan(), nil
		}
		e.turnWaits++
		e.mu.Unlock()
		select {
		case <-e.kick:
		case <-noTimer:
		case <-timer:
		}
		e.mu.Lock()
		e.turnWaits--
	}
	e.starting = true
	if e.turnTimed {
		e.turnTimed = false
		e.turnTimer.Stop()
	}
	if e.surplusLocked(e.turnWaits) {
		e.kickLocked() // to end: see retiresLocked
	}
	return true
}

// passPacedTurn ends the calling worker's turn. When it has just taken a
// token and the next one is due within pacedMax, the turn is handed on by
// the clock; otherwise at once.
func (e *engine[T, R]) passPacedTurn(granted bool) {
	var (
		due time.Duration
		now time.Time // read before due, when the clock may jump
	)
	if granted {
		if e.jumps {
			now = e.clock.Now()
		}
		due = e.rate.Delay(1)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.starting = false
	if due >= pacedMin && due <= pacedMax && !e.stopped && e.timeTurnLocked(due, now) {
		return
	}
	e.kickLocked()
}

// timeTurnLocked sets the turn timer for d from now, the clock's reading
// before d was worked out (read only when the clock may jump). It reports
// false, with the timer stopped, when the clock (a fake one, stepped by a
// test) has moved since: the timer would count d from the new time and
// fire late.
func (e *engine[T, R]) timeTurnLocked(d time.Duration, now time.Time) bool {
	if e.turnTimer == nil {
		// Made only now: on a fake clock a timer counts as a sleeper. The
		// workers that wait without it wake up to wait on it too.
		e.turnTimer = e.clock.NewTimer(d)
		close(e.noTimer)
	} else {
		e.turnTimer.Reset(d)
	}
	if e.jumps && !e.clock.Now().Equal(now) {
		e.turnTimer.Stop()
		return false
	}
	e.turnTimed = true
	return true
}

// kickLocked wakes a worker waiting for the turn, if one waits. A kick
// that no one takes stays for the next worker that comes to wait, which
// then only looks again.
func (e *engine[T, R]) kickLocked() {
	if e.turnWaits > 0 {
		select {
		case e.kick <- struct{}{}:
		default:
		}
	}
}

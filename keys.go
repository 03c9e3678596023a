package trimeter

import (
	"fmt"
	"slices"
	"time"

	"github.com/trimeter-go/trimeter/throttle"
)

// keyState is what the scheduler keeps for one key under PerKey. A key with
// nothing in flight, nothing waiting aside, no pause and a full bucket
// holds nothing worth keeping, and is dropped by the next sweep.
type keyState struct {
	id          any
	open        int // tasks of this key holding its slot
	parked      int // inputs of this key waiting aside
	rate        *throttle.Rate
	meters      []throttle.Meter // from the Keyed meters of PerKey
	pausedUntil time.Time        // a push-back's pause
	retryAt     time.Time        // a keyed meter asked to wait until then
}

// minSweep is the number of keys below which no sweep runs.
const minSweep = 1024

// keyPoll is how long an input waits aside when its key's own meter is
// full and cannot say for how long.
const keyPoll = 5 * time.Millisecond

// resolveKey returns the call's key function for inputs of type T, or nil
// without PerKey.
func resolveKey[T any](c *config) (func(T) any, error) {
	if c.perKey == nil {
		return nil, nil
	}
	k, ok := c.perKey.keyer.(keyer[T])
	if !ok {
		var zero T
		return nil, badOption("PerKey: the key function takes %v, but the inputs are %T", c.perKey.keyType, zero)
	}
	for _, m := range c.perKey.meters {
		if _, ok := m.(throttle.Keyed); !ok {
			return nil, badOption("PerKey(WithMeter(%T)): the meter must implement throttle.Keyed", m)
		}
	}
	return k.keyOf, nil
}

// keyLocked returns the state of key id, making it on first use.
func (e *engine[T, R]) keyLocked(id any) *keyState {
	if k, ok := e.keys[id]; ok {
		return k
	}
	if len(e.keys) >= e.sweepAt {
		e.sweepLocked()
	}
	pk := e.cfg.perKey
	k := &keyState{id: id}
	k.rate, _ = pk.newRate(e.clock) // checked by newEngine
	if len(pk.meters) > 0 {
		name := fmt.Sprint(id)
		for _, m := range pk.meters {
			k.meters = append(k.meters, m.(throttle.Keyed).ForKey(name))
		}
	}
	e.keys[id] = k
	return k
}

// sweepLocked drops the keys that hold nothing worth keeping.
func (e *engine[T, R]) sweepLocked() {
	now := e.clock.Now()
	for id, k := range e.keys {
		idle := k.open == 0 && k.parked == 0 && !now.Before(k.pausedUntil) && !now.Before(k.retryAt)
		if idle && (k.rate == nil || k.rate.Delay(k.rate.Burst()) == 0) {
			delete(e.keys, id)
		}
	}
	e.sweepAt = max(minSweep, 2*len(e.keys))
}

// mayStartLocked says whether t may start now; before is the number of
// inputs with a smaller index waiting aside. When it may not, at is the
// time to look again, or zero when only a freed slot will tell.
func (e *engine[T, R]) mayStartLocked(t *task[T], now time.Time, before int) (at time.Time, ok bool) {
	// Under Ordered, results behind an input that waits aside cannot be
	// delivered before it, so they keep their slots: always leave one
	// slot for the earliest waiting input, or the run could deadlock.
	if e.cfg.ordered && before > 0 && e.limit > 0 && e.open+1 >= e.window {
		return at, false
	}
	k := t.key
	if k == nil {
		return at, true
	}
	if n := e.cfg.perKey.maxAtOnce; n > 0 && k.open >= n {
		return at, false
	}
	if at = later(k.pausedUntil, k.retryAt); now.Before(at) {
		return at, false
	}
	if k.rate != nil {
		if d := k.rate.Delay(1); d > 0 {
			return now.Add(d), false
		}
	}
	return time.Time{}, true
}

// unparkLocked takes the first input waiting aside that may start now. If
// none may, at is the earliest time one might.
func (e *engine[T, R]) unparkLocked(now time.Time) (t task[T], at time.Time, ok bool) {
	for i := range e.parked {
		next, ok := e.mayStartLocked(&e.parked[i], now, i)
		if ok {
			t = e.parked[i]
			e.parked = slices.Delete(e.parked, i, i+1)
			if e.mon != nil {
				e.mon.Wait(-1)
			}
			return t, time.Time{}, true
		}
		if !next.IsZero() && (at.IsZero() || next.Before(at)) {
			at = next
		}
	}
	return t, at, false
}

// repark puts back aside a chosen input whose key's own meter asked it to
// wait, and frees the slots it took.
func (e *engine[T, R]) repark(t task[T], wait time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.open--
	e.running--
	t.key.open--
	t.key.parked++
	t.key.retryAt = later(t.key.retryAt, e.clock.Now().Add(max(wait, keyPoll)))
	i, _ := slices.BinarySearchFunc(e.parked, t.index, func(p task[T], index int) int { return p.index - index })
	e.parked = slices.Insert(e.parked, i, t)
	if e.mon != nil {
		e.mon.Wait(1)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

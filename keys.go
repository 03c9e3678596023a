package trimeter

import (
	"fmt"
	"reflect"
	"runtime/debug"
	"slices"
	"time"

	"github.com/trimeter-go/trimeter/internal/nils"
	"github.com/trimeter-go/trimeter/throttle"
)

// keyState is what the scheduler keeps for one key under PerKey. A key with
// nothing in flight, nothing waiting aside, no pause and a full bucket
// holds nothing worth keeping, and is dropped by the next sweep.
type keyState struct {
	id          any
	open        int // tasks of this key holding its slot
	waiting     int // inputs of this key set aside
	rate        *throttle.Rate
	meters      []throttle.Meter // from the Keyed meters of PerKey, by class (sortMeters)
	blocking    int              // how many of meters are not a throttle.Trier (see meterAt)
	exact       int              // how many of meters, after those, are of package throttle
	pausedUntil time.Time        // a push-back's pause
	retryAt     time.Time        // a keyed meter asked to wait until then (see retryAtLocked)
	retryGen    uint64           // the run's limitsGen when the meters were asked
	readyAt     time.Time        // the rate has no token before then
}

// lane holds the inputs of one key that wait aside, in input order; the
// key is nil for inputs that have none (an upstream error).
type lane[T any] struct {
	key   *keyState
	tasks []task[T]
}

// minSweep is the number of keys below which no sweep runs.
const minSweep = 1024

// keyPoll is how long an input waits aside when its key's own meter is
// full and cannot say for how long (it asks for no wait). A meter that
// says, a rate's, is taken at its word.
const keyPoll = 5 * time.Millisecond

// resolveKey returns the call's key function for inputs of type T, or nil
// without PerKey.
func resolveKey[T any](c *config) (func(T) any, error) {
	if c.perKey() == nil {
		return nil, nil
	}
	// A PerKey that a later one replaced is checked too: a bad value
	// fails the call wherever it is (see Option).
	for _, pk := range c.perKeys {
		if _, ok := pk.keyer.(keyer[T]); !ok {
			return nil, badOption("PerKey: the key function takes %v, but the inputs are %v", pk.keyType, reflect.TypeFor[T]())
		}
		for _, m := range pk.meters {
			if _, ok := m.(throttle.Keyed); !ok {
				return nil, badOption("PerKey(WithMeter(%T)): the meter must implement throttle.Keyed", m)
			}
		}
	}
	return c.perKey().keyer.(keyer[T]).keyOf, nil
}

// keyLocked returns the state of key id, making it on first use. A panic
// in making it (in a meter's ForKey) comes back as p, to stop the run.
func (e *engine[T, R]) keyLocked(id any) (k *keyState, p *PanicError) {
	if k, ok := e.keys[id]; ok {
		return k, nil
	}
	if len(e.keys) >= e.sweepAt {
		e.sweepLocked()
	}
	pk := e.cfg.perKey()
	k = &keyState{id: id}
	k.rate, _ = pk.newRate(e.clock, "") // checked by newEngine
	if len(pk.meters) > 0 {
		ms, p := e.keyMetersLocked(id)
		if p != nil {
			return nil, p
		}
		k.meters, k.blocking, k.exact = sortMeters(ms)
	}
	e.keys[id] = k
	return k, nil
}

// keyMetersLocked asks each keyed meter of PerKey for key id's own meter.
// A panic there (in ForKey, or in id's String method), or a nil meter,
// comes back as p, and the caller stops the run, which hands the turn back
// as usual if it was lent for the pull. A runtime.Goexit there stops the
// run and takes the turn back before the goroutine ends.
func (e *engine[T, R]) keyMetersLocked(id any) (ms []throttle.Meter, p *PanicError) {
	returned := false
	defer func() {
		if returned {
			return
		}
		if r := recover(); r != nil {
			p = asPanicError(r)
			return
		}
		// A Goexit, or a panic(nil) under GODEBUG=panicnil=1 that the
		// recover stopped: then the caller gets p.
		ms, p = nil, &PanicError{Value: ErrGoexit, Stack: debug.Stack()}
		e.panicLocked(p)
		if e.pulling {
			e.takeBackTurnLocked() // next hands it on as this goroutine ends
		}
	}()
	name := fmt.Sprint(id)
	pk := e.cfg.perKey()
	ms = make([]throttle.Meter, 0, len(pk.meters))
	for _, m := range pk.meters {
		km := m.(throttle.Keyed).ForKey(name)
		if nils.Is(km) { // a nil *T in the interface too: it would only panic later
			returned = true
			return nil, &PanicError{
				Value: fmt.Errorf("trimeter: PerKey: %T.ForKey(%q) returned a nil meter", m, name),
				Stack: debug.Stack(),
			}
		}
		ms = append(ms, km)
	}
	returned = true
	return ms, nil
}

// sweepLocked drops the keys that hold nothing worth keeping.
func (e *engine[T, R]) sweepLocked() {
	now := e.clock.Now()
	for id, k := range e.keys {
		idle := k.open == 0 && k.waiting == 0 && !now.Before(k.pausedUntil) && !now.Before(e.retryAtLocked(k))
		if idle && (k.rate == nil || k.rate.Delay(k.rate.Burst()) == 0) {
			delete(e.keys, id)
		}
	}
	e.sweepAt = max(minSweep, 2*len(e.keys))
}

// mayStartLocked says whether t may start now; before is the number of
// inputs with a smaller index waiting aside. When it may not, at is the
// time to look again, or zero when only a freed slot will tell.
func (e *engine[T, R]) mayStartLocked(t *task[T], now *clockReading, before int) (at time.Time, ok bool) {
	// Under Ordered, results behind an input that waits aside cannot be
	// delivered before it, so they keep their slots: always leave one
	// slot for the earliest waiting input, or the run could deadlock.
	// That slot is not needed while the earliest waiting input waits for
	// its key's MaxAtOnce alone: the key's tasks that hold its slots come
	// before it, and the delivery of one frees a call slot with the key's.
	if e.cfg.ordered && before > 0 && e.limit > 0 && e.open+1 >= e.window && !e.headAwaitsKeySlotLocked() {
		return at, false
	}
	k := t.key
	if k == nil {
		return at, true
	}
	if n := e.cfg.perKey().maxAtOnce; n > 0 && k.open >= n {
		return at, false
	}
	if at = later(k.pausedUntil, e.retryAtLocked(k)); !at.IsZero() && now.get().Before(at) {
		return at, false
	}
	if k.rate != nil {
		if now.get().Before(k.readyAt) {
			return k.readyAt, false
		}
		if d := k.rate.Delay(1); d > 0 {
			k.readyAt = now.get().Add(d)
			return k.readyAt, false
		}
	}
	return time.Time{}, true
}

// headAwaitsKeySlotLocked says whether the earliest input waiting aside
// waits for a slot of its key's MaxAtOnce.
func (e *engine[T, R]) headAwaitsKeySlotLocked() bool {
	if len(e.lanes) == 0 {
		return false
	}
	k := e.lanes[0].key
	n := e.cfg.perKey().maxAtOnce
	return k != nil && n > 0 && k.open >= n
}

// The inputs set aside wait in lanes, one per key, kept in the order of
// their first input; so a scan looks at each blocked key once, and an
// input never overtakes an earlier one of its key.

// unparkLocked takes the first input waiting aside that may start now. If
// none may, at is the earliest time one might.
func (e *engine[T, R]) unparkLocked(now *clockReading) (t task[T], at time.Time, ok bool) {
	for i, l := range e.lanes {
		next, ok := e.mayStartLocked(&l.tasks[0], now, i)
		if ok {
			t = l.tasks[0]
			l.tasks = slices.Delete(l.tasks, 0, 1)
			e.unparked(l, i)
			return t, time.Time{}, true
		}
		if !next.IsZero() && (at.IsZero() || next.Before(at)) {
			at = next
		}
	}
	return t, at, false
}

// parkLocked sets t aside in its key's lane.
func (e *engine[T, R]) parkLocked(t task[T]) {
	i := slices.IndexFunc(e.lanes, func(l *lane[T]) bool { return l.key == t.key })
	if i < 0 {
		e.lanes = append(e.lanes, &lane[T]{key: t.key})
		i = len(e.lanes) - 1
	}
	l := e.lanes[i]
	j, _ := slices.BinarySearchFunc(l.tasks, t.index, func(p task[T], index int) int { return p.index - index })
	l.tasks = slices.Insert(l.tasks, j, t)
	e.placeLane(i)
	e.parked++
	e.lanesDue = true
	if t.key != nil {
		t.key.waiting++
	}
	if e.mon != nil {
		e.mon.Wait(1)
	}
}

// unparked updates the books after lane i gave up its first input.
func (e *engine[T, R]) unparked(l *lane[T], i int) {
	e.parked--
	if l.key != nil {
		l.key.waiting--
	}
	if e.mon != nil {
		e.mon.Wait(-1)
	}
	if len(l.tasks) == 0 {
		e.lanes = slices.Delete(e.lanes, i, i+1)
		return
	}
	e.placeLane(i)
}

// placeLane moves lane i to its place in the order of first inputs.
func (e *engine[T, R]) placeLane(i int) {
	l := e.lanes[i]
	e.lanes = slices.Delete(e.lanes, i, i+1)
	j, _ := slices.BinarySearchFunc(e.lanes, l.tasks[0].index, func(m *lane[T], index int) int { return m.tasks[0].index - index })
	e.lanes = slices.Insert(e.lanes, j, l)
}

// repark puts back aside a chosen input whose key's own meter asked it to
// wait, and frees the slots it took; gen is the run's limitsGen from before
// the meters were asked.
func (e *engine[T, R]) repark(t task[T], wait time.Duration, gen uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.open--
	e.callEndedLocked()
	t.key.open--
	t.key.retryAt = later(e.retryAtLocked(t.key), e.clock.Now().Add(wait))
	t.key.retryGen = gen
	e.parkLocked(t)
}

// retryAtLocked returns the time until which k's meters asked its inputs to
// wait aside, or zero if a meter of package throttle has changed a limit
// since they were asked: they ask again at once.
func (e *engine[T, R]) retryAtLocked(k *keyState) time.Time {
	if k.retryGen != e.limitsGen.Load() {
		return time.Time{}
	}
	return k.retryAt
}

// limitsChanged is called when a meter of package throttle has changed a
// limit (internal/changes): the inputs waiting aside for a key's meter ask
// the meters again at once, so that a limit raised reaches them at once.
//
// It may be called with mu held, by this run (a keyed meter's ForKey that
// sets a limit) or by a goroutine that waits for a lock this run's holder
// of mu is waiting for (a meter that sets its keys' limits under its own
// lock): so it never waits for mu. When mu is taken, a goroutine waits for
// it instead, one at a time, until the run ends (endWakers).
func (e *engine[T, R]) limitsChanged() {
	e.limitsGen.Add(1)
	if e.mu.TryLock() {
		e.wakeForLimitsLocked()
		e.mu.Unlock()
		return
	}
	if !e.limitsWaking.CompareAndSwap(false, true) {
		return
	}
	e.wakersMu.Lock()
	defer e.wakersMu.Unlock()
	if e.wakersEnded {
		return
	}
	e.wakers.Add(1)
	go func() {
		defer e.wakers.Done()
		e.mu.Lock()
		defer e.mu.Unlock()
		e.limitsWaking.Store(false) // a change after this reading calls again
		e.wakeForLimitsLocked()
	}()
}

// endWakers keeps limitsChanged from starting goroutines, and waits for
// those it started: a call of limitsChanged may still come after the
// watch has stopped, and the run returns only once every goroutine it
// started has returned.
func (e *engine[T, R]) endWakers() {
	e.wakersMu.Lock()
	e.wakersEnded = true
	e.wakersMu.Unlock()
	e.wakers.Wait()
}

// wakeForLimitsLocked sees that the inputs waiting aside are looked at
// again, after a limit changed.
func (e *engine[T, R]) wakeForLimitsLocked() {
	if e.stopped || e.parked == 0 {
		return
	}
	e.lanesDue = true
	e.room.Broadcast() // the starter, asleep until the earliest wait ends
	e.callLentLocked() // or a worker, while the turn is lent for a pull
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

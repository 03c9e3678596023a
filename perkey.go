package trimeter

import (
	"fmt"
	"reflect"
)

// defaultLookahead is how many pulled inputs may wait for their keys.
const defaultLookahead = 64

// PerKey applies opts to each key separately, beside the call's own limits:
// PerKey(host, MaxAtOnce(2), MaxPerSecond(5)) lets each host have two tasks
// at once and five starts per second. opts may be MaxAtOnce, MaxPerSecond,
// MaxBurst and WithMeter (whose meter must then implement
// [throttle.Keyed]); any other option, a nil key function, or one whose
// argument type is not the call's input type, is a bad option.
//
// An input whose key is at its limit (or paused by a [Pushback]) does not
// hold up inputs of other keys: it waits aside while the scheduler pulls
// further inputs, looking past as many waiting inputs as the lookahead
// ([Lookahead], 64 by default). With that many waiting, the next input is
// still pulled, and starts if its key allows; when it must wait too,
// pulling stops until one of them can start: that stall is the
// backpressure the key's limit asks for, and it keeps memory bounded. So
// another key's input gets past a run of up to lookahead blocked inputs;
// size the lookahead to the longest run of inputs of one slow key that you
// expect between inputs of other keys.
// A key's WithMeter meter that cannot answer without waiting (one that is
// not a [throttle.Trier]) is waited for by the starter, which holds up
// every key meanwhile; the meters of package throttle and of redismeter
// all can. An input waiting aside for its key's meter asks it again when
// the wait the meter gave has passed (every 5 ms on the call's clock, for
// a meter that cannot say how long), and at once when a meter of package
// throttle changes a limit (SetRate, SetBurst, SetLimit): so a limit
// raised there reaches it at once, and one raised on a meter of another
// package when it asks again. In all, at most
// MaxAtOnce + BufferSize + lookahead + 1 inputs are pulled beyond the
// results the consumer has received.
//
// While the sequence works out its next value, inputs waiting aside still
// start as their keys allow (a key comes free, its rate has a token, its
// pause ends). So a sequence may wait for the run's own results before it
// yields again, as a crawler does that feeds the links it finds back into
// its input. Such a sequence waits on the loop body: before the body
// breaks or returns early, it must release the sequence (cancel a context
// the sequence watches, or close its channel), since the break waits for
// the sequence, and a break does not cancel ctx. Under fail-fast, the
// error that ends the run is yielded once the calls have returned, before
// the run waits for the sequence: the loop body releases it then too. A
// panic is not: it is raised only once the sequence has yielded or ended,
// so such a sequence must not wait on the loop body alone.
//
// A key's state is dropped while none of its tasks is in flight or waits
// aside, no pause holds it and its bucket is full, by a sweep that runs
// when the number of keys kept reaches twice what the last sweep left (and
// at least 1,024): so a stream of many distinct keys keeps a flat heap,
// while the states of a spike of keys busy at once stay, idle, until new
// keys bring the number to that mark again, or the run ends.
// Under [Ordered] a task that waits for its key also delays the delivery of
// the results behind it.
//
// A panic in the key function stops the run like a panic in fn, and is
// raised again in the calling goroutine as a [*PanicError]; so is a key
// that a map cannot hold (a K that is an interface, or a struct with one,
// carrying a slice, say), with the runtime's error as its Value, and a key
// that is not equal to itself (a NaN), which no other input could share.
func PerKey[T any, K comparable](key func(T) K, opts ...Option) Option {
	return optionFunc(func(c *config) {
		if c.inKey {
			c.fail("a PerKey inside PerKey: only MaxAtOnce, MaxPerSecond, MaxBurst and WithMeter apply per key")
			return
		}
		if key == nil {
			c.fail("PerKey(nil): needs a key function")
			return
		}
		pk := &perKeyConfig{keyer: keyFunc[T, K](key), keyType: reflect.TypeFor[T]()}
		inner := config{inKey: true}
		inner.applyAll(opts)
		if inner.err != nil {
			if c.err == nil { // the first bad option is the one reported
				c.err = inner.err
			}
			return
		}
		pk.limits = inner.limits
		c.perKeys = append(c.perKeys, pk)
	})
}

// Lookahead sets how many inputs waiting aside for their keys the
// scheduler looks past under [PerKey]: with n waiting, it still pulls the
// next input, which starts if its key allows; when that one must wait too,
// n+1 wait and pulling stops until one of them can start. So an input of
// another key gets past a run of up to n blocked inputs. The default is
// 64. n must be at least 1. Without PerKey it has no effect.
func Lookahead(n int) Option {
	return optionFunc(func(c *config) {
		if !c.callOnly(fmt.Sprintf("Lookahead(%d)", n)) {
			return
		}
		if n < 1 {
			c.fail("Lookahead(%d): must be at least 1", n)
			return
		}
		c.lookahead = n
	})
}

type perKeyConfig struct {
	limits
	keyer   any // a keyFunc[T, K]
	keyType reflect.Type
}

// keyer is satisfied by keyFunc[T, K] for any K.
type keyer[T any] interface {
	keyOf(T) any
}

type keyFunc[T any, K comparable] func(T) K

func (f keyFunc[T, K]) keyOf(v T) any { return f(v) }

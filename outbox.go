package trimeter

// outbox holds finished results until the consumer takes them: in the
// order they finished, or, when ordered, in input order. It is a ring that
// grows to the largest number of results ever waiting, which the slots
// bound, and then allocates no more. Its length is a power of two, so that
// a place is found with a mask rather than a division.
type outbox[E any] struct {
	ordered bool
	buf     []E
	full    []bool // ordered: which places hold a result
	head    int    // place of the next result to take
	n       int    // unordered: results held
	next    int    // ordered: input index of the next result to take
}

// push adds the result of the input at index.
func (o *outbox[E]) push(index int, r E) {
	pos := o.n
	if o.ordered {
		pos = index - o.next
	}
	if pos >= len(o.buf) {
		o.grow(pos + 1)
	}
	i := (o.head + pos) & (len(o.buf) - 1)
	o.buf[i] = r
	if o.ordered {
		o.full[i] = true
	} else {
		o.n++
	}
}

// pop takes the next result, if there is one to take.
func (o *outbox[E]) pop() (r E, ok bool) {
	if len(o.buf) == 0 {
		return r, false
	}
	if o.ordered {
		if !o.full[o.head] {
			return r, false
		}
		o.full[o.head] = false
		o.next++
	} else {
		if o.n == 0 {
			return r, false
		}
		o.n--
	}
	var zero E
	r, o.buf[o.head] = o.buf[o.head], zero
	o.head = (o.head + 1) & (len(o.buf) - 1)
	return r, true
}

// grow makes room for at least n places, keeping each result's position
// relative to head.
func (o *outbox[E]) grow(n int) {
	size := max(2*len(o.buf), 8)
	for size < n {
		size *= 2
	}
	buf := make([]E, size)
	full := make([]bool, size)
	for i := range o.buf {
		j := (o.head + i) & (len(o.buf) - 1)
		buf[i] = o.buf[j]
		if o.ordered {
			full[i] = o.full[j]
		}
	}
	o.buf, o.full, o.head = buf, full, 0
}

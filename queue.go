package trimeter

// queue is a first-in, first-out ring of the inputs the feeder has pulled
// and no worker has taken yet. Its length is a power of two, so a place is
// found with a mask; it grows to the most inputs ever queued (which the
// slots bound) and then allocates no more.
type queue[E any] struct {
	buf  []E
	head int // place of the oldest
	n    int // how many are queued
}

func (q *queue[E]) push(v E) {
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = v
	q.n++
}

// pop takes the oldest, if there is one.
func (q *queue[E]) pop() (v E, ok bool) {
	if q.n == 0 {
		return v, false
	}
	var zero E
	v, q.buf[q.head] = q.buf[q.head], zero
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	return v, true
}

func (q *queue[E]) grow() {
	buf := make([]E, max(2*len(q.buf), 8))
	for i := range q.n {
		buf[i] = q.buf[(q.head+i)&(len(q.buf)-1)]
	}
	q.buf, q.head = buf, 0
}

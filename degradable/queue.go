package degradable

import (
	"slices"
	"sync"
)

// Queue is a shared FIFO queue of E, starting empty, with the same
// signature at every level.
type Queue[E any] interface {
	Handle
	// Enqueue appends e at the back.
	Enqueue(e E)
	// Dequeue removes the front element and returns it with true, or
	// returns E's zero value and false if the queue is empty, as this
	// replica sees it. At the weak level two replicas that dequeue
	// concurrently may both return the same element (see the package doc).
	Dequeue() (E, bool)
	// Len returns the number of elements as this replica sees them.
	Len() int
	// Elements returns the elements as this replica sees them, front first,
	// in a new slice.
	Elements() []E
}

// NewQueue creates a queue with the given level and number of replicas and
// returns one handle per replica, handle i on replica i. It fails on an
// invalid level, a number of replicas outside [1, MaxReplicas] or an
// invalid option.
//
// At the linearizable level the queue is one slice under a lock; at the
// sequential level enqueues and dequeues go through the sequencer's log (a
// dequeue waits until its replica has applied it, to learn its result); at
// the weak level it is one queue per writer, merged in (Lamport timestamp,
// replica) order, whose removed prefixes are merged by maximum.
func NewQueue[E any](level Level, replicas int, opts ...Option) ([]Queue[E], error) {
	cfg, err := newConfig("Queue", level, replicas, opts)
	if err != nil {
		return nil, err
	}
	hs := make([]Queue[E], replicas)
	switch level {
	case Linearizable:
		one := new(lockedQueue[E])
		for i := range hs {
			hs[i] = &linQueue[E]{base: base{level, i}, one: one}
		}
	case Sequential:
		states := make([]machine[queueOp[E]], replicas)
		for i := range states {
			states[i] = new(queueState[E])
		}
		s := newSequencer(cfg, states)
		for i := range hs {
			hs[i] = &seqQueue[E]{base: base{level, i}, s: s, r: s.replicas[i], st: states[i].(*queueState[E])}
		}
	default:
		states := make([]machine[wqOp[E]], replicas)
		for i := range states {
			states[i] = &wqState[E]{ws: make([]wqWriter[E], replicas)}
		}
		g := newGossip(cfg, states)
		for i := range hs {
			hs[i] = &weakQueue[E]{base: base{level, i}, g: g, r: g.replicas[i], st: states[i].(*wqState[E])}
		}
	}
	return hs, nil
}

// fifo is a slice used as a queue.
type fifo[E any] struct {
	items []E
	head  int
}

func (q *fifo[E]) push(e E) { q.items = append(q.items, e) }

func (q *fifo[E]) pop() (E, bool) {
	var zero E
	if q.head == len(q.items) {
		return zero, false
	}
	e := q.items[q.head]
	q.items[q.head] = zero
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else if q.head >= 64 && q.head*2 >= len(q.items) {
		q.items, q.head = append(q.items[:0], q.items[q.head:]...), 0
	}
	return e, true
}

func (q *fifo[E]) len() int { return len(q.items) - q.head }

func (q *fifo[E]) elements() []E { return slices.Clone(q.items[q.head:]) }

// queueOp is an update of the sequential specification of a queue.
type queueOp[E any] struct {
	e   E
	deq bool
}

// queueState is a queue: a sequential replica's copy, with the result of
// the last dequeue it applied.
type queueState[E any] struct {
	q      fifo[E]
	last   E
	lastOK bool
}

func (s *queueState[E]) apply(op queueOp[E]) {
	if op.deq {
		s.last, s.lastOK = s.q.pop()
	} else {
		s.q.push(op.e)
	}
}

// lockedQueue is the one copy of a linearizable queue.
type lockedQueue[E any] struct {
	mu sync.Mutex
	q  fifo[E]
}

// linQueue is a handle on a linearizable queue.
type linQueue[E any] struct {
	base
	one *lockedQueue[E]
}

// Enqueue appends e under the lock.
func (q *linQueue[E]) Enqueue(e E) {
	q.one.mu.Lock()
	q.one.q.push(e)
	q.one.mu.Unlock()
}

// Dequeue removes the front under the lock.
func (q *linQueue[E]) Dequeue() (E, bool) {
	q.one.mu.Lock()
	defer q.one.mu.Unlock()
	return q.one.q.pop()
}

// Len counts the elements under the lock.
func (q *linQueue[E]) Len() int {
	q.one.mu.Lock()
	defer q.one.mu.Unlock()
	return q.one.q.len()
}

// Elements copies the elements under the lock.
func (q *linQueue[E]) Elements() []E {
	q.one.mu.Lock()
	defer q.one.mu.Unlock()
	return q.one.q.elements()
}

// Sync does nothing: there is one copy.
func (q *linQueue[E]) Sync() {}

// seqQueue is the sequential queue.
type seqQueue[E any] struct {
	base
	s  *sequencer[queueOp[E]]
	r  *seqReplica[queueOp[E]]
	st *queueState[E]
}

// Enqueue appends the enqueue to the sequencer's log.
func (q *seqQueue[E]) Enqueue(e E) { q.s.update(q.r, queueOp[E]{e: e}) }

// Dequeue appends the dequeue to the sequencer's log and applies the log at
// this replica up to it, to learn which element it removed.
func (q *seqQueue[E]) Dequeue() (E, bool) {
	q.s.updateLocked(q.r, queueOp[E]{deq: true})
	e, ok := q.st.last, q.st.lastOK
	var zero E
	q.st.last = zero
	q.s.done(q.r)
	return e, ok
}

// Len reads the replica's copy.
func (q *seqQueue[E]) Len() int {
	q.s.lockRead(q.r)
	defer q.s.done(q.r)
	return q.st.q.len()
}

// Elements reads the replica's copy.
func (q *seqQueue[E]) Elements() []E {
	q.s.lockRead(q.r)
	defer q.s.done(q.r)
	return q.st.q.elements()
}

// Sync applies the whole log at this replica.
func (q *seqQueue[E]) Sync() { q.s.sync(q.r) }

// wqItem is an element of a weak queue with its stamp.
type wqItem[E any] struct {
	e E
	s stamp
}

// wqWriter is what a weak replica knows of one writer's queue: the items
// received and not removed (items[i] is the writer's item number off+i),
// how many were received, and how many were removed (merged by maximum;
// it may run ahead of what was received).
type wqWriter[E any] struct {
	items []wqItem[E]
	off   uint64
	recv  uint64
	head  uint64
}

// drop forgets the removed items.
func (w *wqWriter[E]) drop() {
	if w.head > w.off {
		k := min(w.head-w.off, uint64(len(w.items)))
		clear(w.items[:k])
		w.items, w.off = w.items[k:], w.off+k
	}
}

// wqOp is an effector of the weak queue: writer w enqueued item, or some
// replica removed writer w's items below head.
type wqOp[E any] struct {
	w    int
	enq  bool
	item wqItem[E]
	head uint64
}

// wqState is a weak replica's state.
type wqState[E any] struct {
	ws    []wqWriter[E]
	clock uint64 // Lamport clock: at least every time seen here
}

func (s *wqState[E]) apply(op wqOp[E]) {
	w := &s.ws[op.w]
	if op.enq {
		s.clock = max(s.clock, op.item.s.t)
		if w.recv >= w.head {
			w.items = append(w.items, op.item)
		} else {
			w.off++ // removed already
		}
		w.recv++
	} else {
		w.head = max(w.head, op.head)
	}
	w.drop()
}

// front returns the writer whose first item not removed orders first.
func (s *wqState[E]) front() (int, bool) {
	best, found := 0, false
	for i := range s.ws {
		w := &s.ws[i]
		if len(w.items) == 0 {
			continue
		}
		if !found || s.ws[best].items[0].s.after(w.items[0].s) {
			best, found = i, true
		}
	}
	return best, found
}

// weakQueue is one replica of the weak queue.
type weakQueue[E any] struct {
	base
	g  *gossip[wqOp[E]]
	r  *weakReplica[wqOp[E]]
	st *wqState[E]
}

// Enqueue appends e to this replica's own queue, at once here.
func (q *weakQueue[E]) Enqueue(e E) {
	q.g.lock(q.r)
	q.st.clock++
	q.g.emit(q.r, wqOp[E]{w: q.replica, enq: true, item: wqItem[E]{e: e, s: stamp{q.st.clock, q.replica}}})
	q.g.unlock(q.r)
}

// Dequeue removes the first item of the merged queue seen here, at once
// here.
func (q *weakQueue[E]) Dequeue() (E, bool) {
	q.g.lock(q.r)
	defer q.g.unlock(q.r)
	w, ok := q.st.front()
	if !ok {
		var zero E
		return zero, false
	}
	ws := &q.st.ws[w]
	e := ws.items[0].e
	q.g.emit(q.r, wqOp[E]{w: w, head: ws.off + 1})
	return e, true
}

// Len counts the items not removed seen here.
func (q *weakQueue[E]) Len() int {
	q.g.lock(q.r)
	defer q.g.unlock(q.r)
	n := 0
	for i := range q.st.ws {
		n += len(q.st.ws[i].items)
	}
	return n
}

// Elements lists the items not removed seen here, in merged order.
func (q *weakQueue[E]) Elements() []E {
	q.g.lock(q.r)
	defer q.g.unlock(q.r)
	var items []wqItem[E]
	for i := range q.st.ws {
		items = append(items, q.st.ws[i].items...)
	}
	slices.SortFunc(items, func(a, b wqItem[E]) int {
		switch {
		case a.s.after(b.s):
			return 1
		case b.s.after(a.s):
			return -1
		}
		return 0
	})
	out := make([]E, len(items))
	for i, it := range items {
		out[i] = it.e
	}
	return out
}

// Sync pulls every other replica's effectors.
func (q *weakQueue[E]) Sync() { q.g.sync(q.r) }

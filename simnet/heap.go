package simnet

// eventKind says what an event does when it fires.
type eventKind uint8

const (
	evMsg        eventKind = iota + 1 // deliver message a (slab index) from peer to node
	evSync                            // node's oldest outstanding sync completes (inc)
	evTick                            // tick node (inc)
	evSubmit                          // client peer's command (slab index a) reaches node
	evReply                           // node's reply reaches client peer: a=seq, b=value
	evTimeout                         // client peer's timer fires
	evStart                           // client peer starts
	evFaultStart                      // planned fault a starts
	evFaultEnd                        // planned fault a ends
	evHeal                            // the fault window closes
	evAckCrash                        // the armed peer of ack-crash episode a crashes
	evInject                          // a forged message is injected (Config.Inject)
)

// event is one scheduled event. Events are ordered by time, then by the
// sequence number of their scheduling, so equal times fire in the order
// they were scheduled. An event holds no pointer (messages wait in a slab),
// so storing events costs no write barrier and the garbage collector does
// not scan them.
type event struct {
	at   int64
	a, b uint64
	node uint32 // node index (0-based)
	peer uint32 // sending node index, or client index
	inc  uint32 // node incarnation the event belongs to (sync, tick; msg: the sender's)
	kind eventKind
}

// Events of one time wait in buckets: a bucket is a FIFO of event slots
// of one time, in the order of their scheduling. The heap orders its
// entries by time, then by the sequence number of their first event; an
// entry is a single event or a bucket. The first event of a time (as far as
// a small cache of recent times knows) gets an entry of its own; the second
// starts a bucket, and the next ones join the newest bucket of their time,
// so that every event of a bucket was scheduled after every event of the
// older entries of its time. Popping the entries in order and each bucket
// in FIFO order therefore pops events in (time, scheduling) order. With a
// constant latency most events of a run share a handful of times: the heap
// then holds few entries, and most pushes and pops are appends to and
// reads from a bucket; with times that rarely repeat it is a heap of
// single events.
//
// A heap entry packs the sequence number of its first event, whether it is
// a bucket, and the index of its event slot or bucket into one word:
// seq<<(indexBits+1) | isBucket<<indexBits | index. Sequence numbers are
// unique, so the order of the words is the order of the sequence numbers.
const (
	indexBits = 24
	maxIndex  = 1 << indexBits
	// cacheSize is the number of entries of the cache of recent times (a
	// power of two).
	cacheSize = 256
)

// entry is one element of the heap: the time and the packed first
// sequence number, kind and index of a single event or a bucket.
type entry struct {
	at  int64
	key uint64
}

func before(a, b entry) bool { return a.at < b.at || (a.at == b.at && a.key < b.key) }

// bucket is a FIFO of event slots of one time; at is -1 while the bucket
// is free.
type bucket struct {
	at    int64
	head  int
	slots []uint32
}

// recent is an entry of the cache of recent times: the last time pushed
// whose cache index this is, and 1 + the index of its newest bucket, 0 if
// it has none (its only event has an entry of its own).
type recent struct {
	at int64
	b  uint32
}

// eventHeap is the event queue: a 4-ary min-heap of single events and
// buckets of events (see above), plus a FIFO of the events scheduled for
// the current time cur (the time of the last event popped from the heap:
// self-sends and zero delays), which skip the heap. Events are ordered by
// time, then by the sequence number of their scheduling, so equal times
// fire in the order they were scheduled: an event in the heap at time cur
// was scheduled before cur was reached, so before every event in the FIFO.
// That holds while nothing is scheduled before cur, as in a time-ordered
// run; an explored run, whose clock is not the queue's, may schedule
// earlier events, and the FIFO then still goes first (the traces of
// explored runs depend on it).
type eventHeap struct {
	now     []uint32 // slots of events at time cur, in order, from nowHead
	nowHead int
	cur     int64
	h       []entry
	b       []bucket
	freeB   []uint32
	cache   [cacheSize]recent
	seq     uint64
	n       int     // events queued
	ev      []event // event slots
	free    []uint32
}

func (q *eventHeap) push(e event) {
	var slot uint32
	if n := len(q.free); n > 0 {
		slot = q.free[n-1]
		q.free = q.free[:n-1]
		q.ev[slot] = e
	} else {
		if len(q.ev) == maxIndex {
			panic("simnet: more than 16M events in flight")
		}
		slot = uint32(len(q.ev))
		q.ev = append(q.ev, e)
	}
	q.seq++
	q.n++
	if e.at == q.cur {
		q.now = append(q.now, slot)
		return
	}
	c := &q.cache[uint64(e.at)%cacheSize]
	if c.at != e.at {
		// A time not seen lately: an entry of its own.
		c.at, c.b = e.at, 0
		q.pushEntry(entry{at: e.at, key: q.seq<<(indexBits+1) | uint64(slot)})
		return
	}
	if c.b != 0 {
		if b := &q.b[c.b-1]; b.at == e.at {
			b.slots = append(b.slots, slot)
			return
		}
	}
	var bi uint32
	if n := len(q.freeB); n > 0 {
		bi = q.freeB[n-1]
		q.freeB = q.freeB[:n-1]
	} else {
		if len(q.b) == maxIndex {
			panic("simnet: more than 16M event times in flight")
		}
		bi = uint32(len(q.b))
		q.b = append(q.b, bucket{})
	}
	b := &q.b[bi]
	b.at = e.at
	b.slots = append(b.slots, slot)
	c.b = bi + 1
	q.pushEntry(entry{at: e.at, key: q.seq<<(indexBits+1) | maxIndex | uint64(bi)})
}

// pushEntry adds en to the heap.
func (q *eventHeap) pushEntry(en entry) {
	q.h = append(q.h, en)
	h := q.h
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 4
		if before(h[p], en) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = en
}

// pop removes and returns the earliest event; the queue must not be empty.
func (q *eventHeap) pop() event {
	var slot uint32
	if q.nowHead < len(q.now) && (len(q.h) == 0 || q.h[0].at != q.cur) {
		slot = q.now[q.nowHead]
		q.nowHead++
		if q.nowHead == len(q.now) {
			q.now, q.nowHead = q.now[:0], 0
		}
		q.n--
		q.free = append(q.free, slot)
		return q.ev[slot]
	}
	q.cur = q.h[0].at
	key := q.h[0].key
	idx := uint32(key & (maxIndex - 1))
	if key&maxIndex == 0 {
		slot = idx
		q.popHeap()
	} else {
		b := &q.b[idx]
		slot = b.slots[b.head]
		b.head++
		if b.head == len(b.slots) {
			// The bucket is empty: it leaves the heap and its slice is
			// kept for reuse.
			b.at, b.head, b.slots = -1, 0, b.slots[:0]
			q.freeB = append(q.freeB, idx)
			q.popHeap()
		}
	}
	q.n--
	q.free = append(q.free, slot)
	return q.ev[slot]
}

// popHeap removes the heap's first entry.
func (q *eventHeap) popHeap() {
	h := q.h
	last := len(h) - 1
	e := h[last]
	h = h[:last]
	q.h = h
	if last == 0 {
		return
	}
	i := 0
	for {
		c := 4*i + 1
		if c >= last {
			break
		}
		end := min(c+4, last)
		for j := c + 1; j < end; j++ {
			if before(h[j], h[c]) {
				c = j
			}
		}
		if before(e, h[c]) {
			break
		}
		h[i] = h[c]
		i = c
	}
	h[i] = e
}

func (q *eventHeap) len() int { return q.n }

// slab holds the messages (and submitted commands) of events in flight, so
// that events need not hold pointers.
type slab[T any] struct {
	m    []T
	free []uint32
}

func (s *slab[T]) put(m T) uint64 {
	if n := len(s.free); n > 0 {
		i := s.free[n-1]
		s.free = s.free[:n-1]
		s.m[i] = m
		return uint64(i)
	}
	s.m = append(s.m, m)
	return uint64(len(s.m) - 1)
}

func (s *slab[T]) take(i uint64) T {
	m := s.m[i]
	var zero T
	s.m[i] = zero
	s.free = append(s.free, uint32(i))
	return m
}

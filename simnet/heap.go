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
// of one time, in the order of their scheduling. Buckets are ordered by
// time, then by the sequence number of their first event; an event joins
// the newest bucket of its time (found through a small cache), or starts a
// new one, so that every event of a bucket was scheduled after every event
// of the older buckets of its time. Popping the buckets in order and each
// bucket in FIFO order therefore pops events in (time, scheduling) order.
// With a constant latency most events of a run share a handful of times:
// the heap then holds few buckets, and most pushes and pops are appends to
// and reads from a bucket.
//
// A heap entry packs the bucket's first sequence number with its index
// into one word, seq<<bucketBits | index; sequence numbers are unique, so
// the order of the words is the order of the sequence numbers.
const (
	bucketBits = 24
	maxBuckets = 1 << bucketBits
	// cacheSize is the number of entries of the cache of newest buckets
	// by time (a power of two).
	cacheSize = 256
)

// entry is one element of the heap: a bucket's time and its packed first
// sequence number and index.
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

// eventHeap is the event queue: a 4-ary min-heap of buckets of event slots
// (see above). Events are ordered by time, then by the sequence number of
// their scheduling, so equal times fire in the order they were scheduled.
type eventHeap struct {
	h     []entry
	b     []bucket
	freeB []uint32
	// cache[at%cacheSize] is 1 + the index of the newest bucket of time
	// at, if that bucket is still in the heap (its time is checked).
	cache [cacheSize]uint32
	seq   uint64
	n     int     // events queued
	ev    []event // event slots
	free  []uint32
}

func (q *eventHeap) push(e event) {
	var slot uint32
	if n := len(q.free); n > 0 {
		slot = q.free[n-1]
		q.free = q.free[:n-1]
		q.ev[slot] = e
	} else {
		slot = uint32(len(q.ev))
		q.ev = append(q.ev, e)
	}
	q.seq++
	q.n++
	c := &q.cache[uint64(e.at)%cacheSize]
	if *c != 0 {
		if b := &q.b[*c-1]; b.at == e.at {
			b.slots = append(b.slots, slot)
			return
		}
	}
	var bi uint32
	if n := len(q.freeB); n > 0 {
		bi = q.freeB[n-1]
		q.freeB = q.freeB[:n-1]
	} else {
		if len(q.b) == maxBuckets {
			panic("simnet: more than 16M event times in flight")
		}
		bi = uint32(len(q.b))
		q.b = append(q.b, bucket{})
	}
	b := &q.b[bi]
	b.at = e.at
	b.slots = append(b.slots, slot)
	*c = bi + 1
	en := entry{at: e.at, key: q.seq<<bucketBits | uint64(bi)}
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
	bi := uint32(q.h[0].key & (maxBuckets - 1))
	b := &q.b[bi]
	slot := b.slots[b.head]
	b.head++
	if b.head == len(b.slots) {
		// The bucket is empty: it leaves the heap and its slice is
		// kept for reuse.
		b.at, b.head, b.slots = -1, 0, b.slots[:0]
		q.freeB = append(q.freeB, bi)
		q.popHeap()
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

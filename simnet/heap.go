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

// Event slots are packed with the sequence number into one word of the
// heap entry: seq<<slotBits | slot. Sequence numbers are unique, so the
// order of the words is the order of the sequence numbers.
const (
	slotBits = 24
	maxSlots = 1 << slotBits
)

// entry is one element of the heap: the event's time and its packed
// sequence number and slot.
type entry struct {
	at  int64
	key uint64
}

func before(a, b entry) bool { return a.at < b.at || (a.at == b.at && a.key < b.key) }

// eventHeap is the event queue: a 4-ary min-heap of small entries that point
// at event slots, plus a FIFO of the entries scheduled for the current time
// (self-sends and zero delays), which skip the heap. The order is exactly
// (at, seq): an entry in the heap at the current time was scheduled before
// the current time was reached, so before every entry in the FIFO.
type eventHeap struct {
	h       []entry
	now     []entry // entries at time cur, in seq order, from nowHead
	nowHead int
	cur     int64
	seq     uint64
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
		if len(q.ev) == maxSlots {
			panic("simnet: more than 16M events in flight")
		}
		slot = uint32(len(q.ev))
		q.ev = append(q.ev, e)
	}
	q.seq++
	en := entry{at: e.at, key: q.seq<<slotBits | uint64(slot)}
	if e.at == q.cur {
		q.now = append(q.now, en)
		return
	}
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
	var top entry
	if q.nowHead < len(q.now) && (len(q.h) == 0 || q.h[0].at != q.cur) {
		top = q.now[q.nowHead]
		q.nowHead++
		if q.nowHead == len(q.now) {
			q.now, q.nowHead = q.now[:0], 0
		}
	} else {
		top = q.popHeap()
		q.cur = top.at
	}
	slot := uint32(top.key & (maxSlots - 1))
	q.free = append(q.free, slot)
	return q.ev[slot]
}

func (q *eventHeap) popHeap() entry {
	h := q.h
	top := h[0]
	last := len(h) - 1
	e := h[last]
	h = h[:last]
	q.h = h
	if last == 0 {
		return top
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
	return top
}

func (q *eventHeap) len() int { return len(q.h) + len(q.now) - q.nowHead }

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

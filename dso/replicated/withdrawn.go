package replicated

import (
	"cmp"
	"container/heap"
	"encoding/binary"
	"maps"
	"slices"

	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/protocols"
)

// MaxWithdrawn bounds the calls a table remembers as withdrawn before they
// executed; beyond it the ones with the smallest ids are forgotten (and
// would run if they still arrived).
const MaxWithdrawn = 1 << 16

// withdrawnCall is the answer a call withdrawn before it executed gets if
// it arrives after all.
type withdrawnCall struct {
	code wire.Code
	msg  string
}

// withdrawnCalls remembers the calls withdrawn before they executed: a
// server withdraws a call whose client gave up without knowing whether it
// has executed, parked, or not reached the replicas yet. A withdrawn call
// that arrives later is answered with the withdrawal's error and does not
// run, so a call whose client gave up never takes effect afterwards (a
// pipe's take would otherwise swallow a value nobody reads).
//
// Its state is a set: protocols that order only conflicting commands
// (atlas, epaxos) apply the withdrawals of calls on different objects in
// different orders at different replicas, so nothing here may depend on
// the order of additions. The set is encoded in id order, and at
// MaxWithdrawn it keeps the largest ids, which is the same set whatever
// the order they came in. (Which call is forgotten can still differ
// between such replicas when a withdrawn call arrives, and leaves the set,
// between two additions that overflow it: that takes MaxWithdrawn calls
// withdrawn before they reached the replicas and not arrived since.)
type withdrawnCalls struct {
	m map[protocols.CommandID]withdrawnCall
	// low is a min-heap (idCompare) of the ids in m and of ids taken out
	// of m since (skipped when they come up; rebuilt when they are half).
	low idHeap
}

// add remembers id as withdrawn with the given answer; if MaxWithdrawn are
// remembered, it forgets the smallest id, or id itself if that is smaller.
func (w *withdrawnCalls) add(id protocols.CommandID, c withdrawnCall) {
	if w.m == nil {
		w.m = map[protocols.CommandID]withdrawnCall{}
	}
	if _, ok := w.m[id]; ok {
		return
	}
	if len(w.m) >= MaxWithdrawn {
		for !w.has(w.low[0]) {
			heap.Pop(&w.low)
		}
		if idCompare(id, w.low[0]) < 0 {
			return
		}
		delete(w.m, heap.Pop(&w.low).(protocols.CommandID))
	}
	w.m[id] = c
	heap.Push(&w.low, id)
	if len(w.low) > 2*len(w.m)+64 {
		w.low = w.ids()
	}
}

func (w *withdrawnCalls) has(id protocols.CommandID) bool {
	_, ok := w.m[id]
	return ok
}

// idHeap is a container/heap of command ids, smallest first.
type idHeap []protocols.CommandID

func (h idHeap) Len() int           { return len(h) }
func (h idHeap) Less(i, j int) bool { return idCompare(h[i], h[j]) < 0 }
func (h idHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *idHeap) Push(x any)        { *h = append(*h, x.(protocols.CommandID)) }
func (h *idHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// take returns and forgets the answer of id if it was withdrawn.
func (w *withdrawnCalls) take(id protocols.CommandID) (withdrawnCall, bool) {
	c, ok := w.m[id]
	if ok {
		delete(w.m, id)
	}
	return c, ok
}

// ids returns the ids remembered, in order (idCompare).
func (w *withdrawnCalls) ids() []protocols.CommandID {
	out := slices.Collect(maps.Keys(w.m))
	slices.SortFunc(out, idCompare)
	return out
}

// idCompare orders command ids by client, then sequence.
func idCompare(a, b protocols.CommandID) int {
	if c := cmp.Compare(a.Client, b.Client); c != 0 {
		return c
	}
	return cmp.Compare(a.Seq, b.Seq)
}

// appendTo encodes the remembered calls in id order: a count, then per
// call its client, sequence, code and message.
func (w *withdrawnCalls) appendTo(b []byte) []byte {
	ids := w.ids()
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		c := w.m[id]
		b = binary.AppendUvarint(b, id.Client)
		b = binary.AppendUvarint(b, id.Seq)
		b = append(b, byte(c.code))
		b = appendString(b, c.msg)
	}
	return b
}

// readWithdrawn decodes what appendTo wrote.
func readWithdrawn(r *wire.Reader) withdrawnCalls {
	var w withdrawnCalls
	n := r.Count(4) // client, seq, code, msg: a byte each at least
	for i := 0; i < n && r.Err() == nil; i++ {
		id := protocols.CommandID{Client: r.Uvarint(), Seq: r.Uvarint()}
		c := withdrawnCall{code: wire.Code(r.Byte()), msg: r.String()}
		if r.Err() != nil {
			break
		}
		if _, dup := w.m[id]; dup || c.code == 0 {
			r.Fail("withdrawn call %s repeated or without a code", id)
			break
		}
		w.add(id, c)
	}
	return w
}

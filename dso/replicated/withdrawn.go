package replicated

import (
	"encoding/binary"

	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/protocols"
)

// MaxWithdrawn bounds the calls a table remembers as withdrawn before they
// executed; beyond it the oldest is forgotten (and would run if it still
// arrived).
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
// pipe's take would otherwise swallow a value nobody reads). The oldest
// are forgotten first, beyond MaxWithdrawn.
type withdrawnCalls struct {
	m     map[protocols.CommandID]withdrawnCall
	order []protocols.CommandID // oldest first; may hold ids taken out of m
}

// add remembers id as withdrawn with the given answer.
func (w *withdrawnCalls) add(id protocols.CommandID, c withdrawnCall) {
	if w.m == nil {
		w.m = map[protocols.CommandID]withdrawnCall{}
	}
	if _, ok := w.m[id]; ok {
		return
	}
	w.m[id] = c
	w.order = append(w.order, id)
	for len(w.m) > MaxWithdrawn {
		delete(w.m, w.order[0])
		w.order = w.order[1:]
	}
	if len(w.order) > 2*MaxWithdrawn { // drop the ids already taken out
		w.order = w.live()
	}
}

// take returns and forgets the answer of id if it was withdrawn.
func (w *withdrawnCalls) take(id protocols.CommandID) (withdrawnCall, bool) {
	c, ok := w.m[id]
	if ok {
		delete(w.m, id)
	}
	return c, ok
}

// live returns the ids still remembered, oldest first.
func (w *withdrawnCalls) live() []protocols.CommandID {
	out := make([]protocols.CommandID, 0, len(w.m))
	for _, id := range w.order {
		if _, ok := w.m[id]; ok {
			out = append(out, id)
		}
	}
	return out
}

// appendTo encodes the remembered calls, oldest first: a count, then per
// call its client, sequence, code and message.
func (w *withdrawnCalls) appendTo(b []byte) []byte {
	ids := w.live()
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

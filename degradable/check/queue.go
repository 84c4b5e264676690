package check

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/anishathalye/porcupine"
	"github.com/blossom-dso/blossom/lincheck"
)

// QueueKind is the kind of a QueueOp.
type QueueKind uint8

// The operations of a queue.
const (
	Enqueue QueueKind = iota // Enqueue(Elem)
	Dequeue                  // Dequeue returned (Elem, Ok)
)

// QueueOp is one completed operation on a queue.
type QueueOp[E comparable] struct {
	Client       int   // the handle that called it
	Call, Return int64 // invocation and response, in one clock for the history
	Kind         QueueKind
	Elem         E    // what Enqueue appended or Dequeue returned
	Ok           bool // whether Dequeue returned an element
}

func (op QueueOp[E]) String() string {
	switch {
	case op.Kind == Enqueue:
		return fmt.Sprintf("enqueue(%v)", op.Elem)
	case op.Ok:
		return fmt.Sprintf("dequeue → %v", op.Elem)
	}
	return "dequeue → empty"
}

func queueSpans[E comparable](ops []QueueOp[E]) []span {
	s := make([]span, len(ops))
	for i, op := range ops {
		s[i] = span{op.Client, op.Call, op.Return}
	}
	return s
}

// queueConverged reports finals that differ.
func queueConverged[E comparable](final [][]E) error {
	for i, f := range final {
		if !slices.Equal(f, final[0]) {
			return violation("after quiescence and Sync replicas 0 and %d hold %v and %v: they did not converge", i, final[0], f)
		}
	}
	return nil
}

// QueueLinearizable checks that ops, followed by the quiescent reads final
// (final[i]: replica i's Elements after every operation returned and Sync),
// is linearizable, with Porcupine and lincheck.PipeModel of unbounded
// capacity (elements are numbered; an enqueue is an offer that succeeds, a
// dequeue a poll). The finals must be equal, and are checked as replica 0
// draining the queue after everything. Exact, within PorcupineTimeout.
func QueueLinearizable[E comparable](ops []QueueOp[E], final [][]E) error {
	hist, err := queuePorcupine(ops, final)
	if err != nil {
		return err
	}
	return porcupineVerdict(lincheck.Check(lincheck.PipeModel, hist, PorcupineTimeout))
}

// queuePorcupine checks the form of a queue history and its finals, and
// returns it as Porcupine operations for lincheck.PipeModel.
func queuePorcupine[E comparable](ops []QueueOp[E], final [][]E) ([]porcupine.Operation, error) {
	spans := queueSpans(ops)
	if _, err := programOrder(spans, len(final)); err != nil {
		return nil, err
	}
	if err := queueConverged(final); err != nil {
		return nil, err
	}
	in := newInterner[E]()
	name := func(e E) string { return strconv.Itoa(in.id(e)) }
	var hist []porcupine.Operation
	add := func(client int, call, ret int64, input lincheck.PipeInput, out lincheck.PipeOutput) {
		input.Capacity = math.MaxInt
		hist = append(hist, porcupine.Operation{ClientId: client, Input: input, Call: call, Output: out, Return: ret})
	}
	for _, op := range ops {
		if op.Kind == Enqueue {
			add(op.Client, op.Call, op.Return, lincheck.PipeInput{Op: lincheck.PipeOffer, Value: name(op.Elem)}, lincheck.PipeOutput{OK: true})
			continue
		}
		out := lincheck.PipeOutput{OK: op.Ok}
		if op.Ok {
			out.Value = name(op.Elem)
		}
		add(op.Client, op.Call, op.Return, lincheck.PipeInput{Op: lincheck.PipePoll}, out)
	}
	if len(final) > 0 {
		t := end(spans)
		for _, e := range final[0] {
			add(0, t, t, lincheck.PipeInput{Op: lincheck.PipePoll}, lincheck.PipeOutput{Value: name(e), OK: true})
			t++
		}
		add(0, t, t, lincheck.PipeInput{Op: lincheck.PipePoll}, lincheck.PipeOutput{})
	}
	return hist, nil
}

// QueueSequential checks that ops, with the quiescent reads final, is
// sequentially consistent: one order of every operation extends each
// client's program order and gives every dequeue its result, and each
// client's final (its last read) is the queue left at the end; the finals
// must be equal. It is an exact search (searchSC) over the whole history,
// exponential in the number of clients: when a first search of
// SearchBudget/32 states does not decide, it runs the linearizability check
// (Porcupine, for at most shortcutTimeout) and passes a history found
// linearizable, which is sequentially consistent; otherwise it searches up
// to SearchBudget states, and returns ErrUndecided beyond. Keep such
// histories small.
func QueueSequential[E comparable](ops []QueueOp[E], final [][]E) error {
	spans := queueSpans(ops)
	po, err := programOrder(spans, len(final))
	if err != nil {
		return err
	}
	if err := queueConverged(final); err != nil {
		return err
	}
	in := newInterner[E]()
	t := end(spans)
	progs := make([][]scOp[[]int], len(po))
	for c, idx := range po {
		for k, i := range idx {
			op := ops[i]
			id := in.id(op.Elem)
			name := fmt.Sprintf("%s (its operation %d)", op, k)
			switch {
			case op.Kind == Enqueue:
				progs[c] = append(progs[c], scOp[[]int]{at: op.Call, name: name, step: func(q []int) (bool, []int) {
					return true, append(q[:len(q):len(q)], id)
				}})
			case op.Ok:
				progs[c] = append(progs[c], scOp[[]int]{at: op.Call, name: name, step: func(q []int) (bool, []int) {
					if len(q) == 0 || q[0] != id {
						return false, q
					}
					return true, q[1:]
				}})
			default:
				progs[c] = append(progs[c], scOp[[]int]{at: op.Call, name: name, step: func(q []int) (bool, []int) { return len(q) == 0, q }})
			}
		}
		if c < len(final) {
			want := make([]int, len(final[c]))
			for i, e := range final[c] {
				want[i] = in.id(e)
			}
			progs[c] = append(progs[c], scOp[[]int]{read: true, at: t, name: fmt.Sprintf("its final read %v", final[c]), step: func(q []int) (bool, []int) {
				return slices.Equal(q, want), q
			}})
		}
	}
	key := func(q []int) string {
		var b []byte
		for _, id := range q {
			b = binary.AppendUvarint(b, uint64(id))
		}
		return string(b)
	}
	viable := queueViable(ops, po, final, in)
	err = searchSC(progs, nil, key, viable, SearchBudget/32)
	if !errors.Is(err, ErrUndecided) {
		return err
	}
	if hist, err := queuePorcupine(ops, final); err == nil && lincheck.Check(lincheck.PipeModel, hist, shortcutTimeout).Verdict == lincheck.Ok {
		return nil
	}
	return searchSC(progs, nil, key, viable, SearchBudget)
}

// queueViable returns, for a history whose enqueued elements are unique
// (nil otherwise: no pruning), a test of the search's states: a state is
// viable only if the elements that an operation beyond the frontier still
// dequeues form a prefix of the queue, as each must reach the front, those
// of one consumer come in its program order, and the others, which stay,
// come in the order of the finals.
func queueViable[E comparable](ops []QueueOp[E], po [][]int, final [][]E, in *interner[E]) func([]int, []int) bool {
	type at struct{ client, index int }
	deq := make(map[int]at)
	enq := make(map[int]bool)
	for c, idx := range po {
		for k, i := range idx {
			op := ops[i]
			id := in.id(op.Elem)
			switch {
			case op.Kind == Enqueue && enq[id]:
				return nil
			case op.Kind == Enqueue:
				enq[id] = true
			case op.Ok:
				deq[id] = at{c, k}
			}
		}
	}
	rank := make(map[int]int)
	if len(final) > 0 {
		for i, e := range final[0] {
			rank[in.id(e)] = i
		}
	}
	lastOf := make([]int, len(po))
	return func(q []int, pos []int) bool {
		leaving, last := true, -1
		for c := range lastOf {
			lastOf[c] = -1
		}
		for _, id := range q {
			if d, ok := deq[id]; ok && pos[d.client] <= d.index {
				if !leaving || d.index < lastOf[d.client] {
					return false
				}
				lastOf[d.client] = d.index
				continue
			}
			leaving = false
			if len(final) > 0 {
				r, ok := rank[id]
				if !ok || r <= last {
					return false
				}
				last = r
			}
		}
		return true
	}
}

// QueueWeak checks ops, with the quiescent reads final, against the weak
// level (one queue per writer merged in stamp order, removed prefixes merged
// by maximum), for histories whose enqueues append distinct elements
// (ErrUndecided otherwise):
//
//   - validity: a dequeue returns an element whose enqueue was invoked
//     before it returned;
//   - monotonic reads: one client never dequeues the same element twice,
//     and dequeues the elements of one producer in that producer's order;
//   - read-your-writes: a dequeue that finds the queue empty comes after
//     some dequeue (invoked before it returned) of each element its client
//     enqueued before;
//   - convergence and no loss: the finals are equal, in each producer's
//     order, hold no element that was dequeued, and every element enqueued
//     is in the finals or was dequeued.
//
// Two clients may dequeue the same element (at-least-once), which the
// linearizable and sequential checkers reject. The conditions are necessary,
// not sufficient.
func QueueWeak[E comparable](ops []QueueOp[E], final [][]E) error {
	spans := queueSpans(ops)
	po, err := programOrder(spans, len(final))
	if err != nil {
		return err
	}
	if err := queueConverged(final); err != nil {
		return err
	}
	type origin struct {
		op  QueueOp[E]
		seq int // its rank among its producer's enqueues
	}
	enq := make(map[E]origin)
	for _, idx := range po {
		for k, i := range idx {
			op := ops[i]
			if op.Kind != Enqueue {
				continue
			}
			if o, dup := enq[op.Elem]; dup {
				return undecided("clients %d and %d both enqueue %v: the weak queue check needs unique elements", o.op.Client, op.Client, op.Elem)
			}
			enq[op.Elem] = origin{op, k}
		}
	}
	dequeuedBy := make(map[E][]QueueOp[E]) // the dequeues that returned each element
	for _, op := range ops {
		if op.Kind == Dequeue && op.Ok {
			dequeuedBy[op.Elem] = append(dequeuedBy[op.Elem], op)
		}
	}
	for c, idx := range po {
		taken := make(map[E]bool)
		lastOf := make(map[int]origin) // per producer, the last element this client dequeued
		var own []E                    // the client's enqueues so far
		for k, i := range idx {
			op := ops[i]
			what := fmt.Sprintf("client %d's %s (its operation %d)", c, op, k)
			switch {
			case op.Kind == Enqueue:
				own = append(own, op.Elem)
			case op.Ok:
				o, ok := enq[op.Elem]
				switch {
				case !ok:
					return violation("%s: nobody enqueued %v", what, op.Elem)
				case o.op.Call > op.Return:
					return violation("%s: the enqueue of %v was invoked only after the dequeue returned", what, op.Elem)
				case taken[op.Elem]:
					return violation("%s: the client already dequeued %v (monotonic reads)", what, op.Elem)
				}
				if l, ok := lastOf[o.op.Client]; ok && l.seq > o.seq {
					return violation("%s after dequeuing %v: client %d enqueued %v first (each producer's order)", what, l.op.Elem, o.op.Client, op.Elem)
				}
				taken[op.Elem], lastOf[o.op.Client] = true, o
			default:
				for _, e := range own {
					gone := false
					for _, d := range dequeuedBy[e] {
						gone = gone || d.Call <= op.Return
					}
					if !gone {
						return violation("%s, but nobody had dequeued its own %v by then (read-your-writes)", what, e)
					}
				}
			}
		}
	}
	if len(final) == 0 {
		return nil
	}
	inFinal := make(map[E]bool)
	lastSeq := make(map[int]int)
	for _, e := range final[0] {
		o, ok := enq[e]
		switch {
		case !ok:
			return violation("after quiescence the replicas hold %v, which nobody enqueued", e)
		case inFinal[e]:
			return violation("after quiescence the replicas hold %v twice", e)
		case len(dequeuedBy[e]) > 0:
			return violation("after quiescence and Sync the replicas still hold %v, which client %d dequeued", e, dequeuedBy[e][0].Client)
		}
		if s, ok := lastSeq[o.op.Client]; ok && s > o.seq {
			return violation("after quiescence the replicas hold client %d's elements out of its order (%v)", o.op.Client, final[0])
		}
		inFinal[e], lastSeq[o.op.Client] = true, o.seq
	}
	for e, o := range enq {
		if !inFinal[e] && len(dequeuedBy[e]) == 0 {
			return violation("client %d enqueued %v, which nobody dequeued and no replica holds after quiescence: it was lost", o.op.Client, e)
		}
	}
	return nil
}

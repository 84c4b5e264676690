package check

import (
	"fmt"
	"strconv"

	"github.com/anishathalye/porcupine"
	"github.com/blossom-dso/blossom/lincheck"
)

// SetKind is the kind of a SetOp.
type SetKind uint8

// The operations of a set.
const (
	SetAdd      SetKind = iota // Add(Elem)
	SetRemove                  // Remove(Elem)
	SetContains                // Contains(Elem) returned Result
)

// SetOp is one completed operation on a set.
type SetOp[E comparable] struct {
	Client       int   // the handle that called it
	Call, Return int64 // invocation and response, in one clock for the history
	Kind         SetKind
	Elem         E
	Result       bool // what Contains returned
}

func (op SetOp[E]) String() string {
	switch op.Kind {
	case SetAdd:
		return fmt.Sprintf("add(%v)", op.Elem)
	case SetRemove:
		return fmt.Sprintf("remove(%v)", op.Elem)
	}
	return fmt.Sprintf("contains(%v) → %v", op.Elem, op.Result)
}

func setSpans[E comparable](ops []SetOp[E]) []span {
	s := make([]span, len(ops))
	for i, op := range ops {
		s[i] = span{op.Client, op.Call, op.Return}
	}
	return s
}

// setFinals turns the quiescent reads (final[i]: replica i's Elements after
// every operation returned and Sync) into one Contains per element per
// replica, for every element of the history or of a final, at time t. It
// reports a final that lists an element twice.
func setFinals[E comparable](ops []SetOp[E], final [][]E, t int64) ([]SetOp[E], error) {
	var universe []E
	seen := make(map[E]bool)
	note := func(e E) {
		if !seen[e] {
			seen[e] = true
			universe = append(universe, e)
		}
	}
	for _, op := range ops {
		note(op.Elem)
	}
	ins := make([]map[E]bool, len(final))
	for i, f := range final {
		ins[i] = make(map[E]bool, len(f))
		for _, e := range f {
			if ins[i][e] {
				return nil, violation("replica %d lists %v twice after quiescence", i, e)
			}
			ins[i][e] = true
			note(e)
		}
	}
	var out []SetOp[E]
	for i := range final {
		for _, e := range universe {
			out = append(out, SetOp[E]{Client: i, Call: t, Return: t + 1, Kind: SetContains, Elem: e, Result: ins[i][e]})
		}
	}
	return out, nil
}

// SetLinearizable checks that ops, followed by the quiescent reads final
// (final[i]: replica i's Elements after every operation returned and Sync),
// is linearizable, with Porcupine and lincheck.SetModel partitioned by
// element (each final becomes one Contains per element). Add and Remove
// return nothing, so their outputs are left unknown. Exact for Add, Remove
// and Contains (linearizability is compositional), within PorcupineTimeout;
// a final is checked element by element, not as one atomic snapshot.
func SetLinearizable[E comparable](ops []SetOp[E], final [][]E) error {
	spans := setSpans(ops)
	if _, err := programOrder(spans, len(final)); err != nil {
		return err
	}
	fin, err := setFinals(ops, final, end(spans))
	if err != nil {
		return err
	}
	in := newInterner[E]()
	var hist []porcupine.Operation
	for _, op := range append(ops[:len(ops):len(ops)], fin...) {
		input := lincheck.SetInput{Op: lincheck.SetOp(op.Kind), Elem: strconv.Itoa(in.id(op.Elem))}
		out := lincheck.SetOutput{Result: op.Result}
		if op.Kind != SetContains {
			out = lincheck.SetOutput{Unknown: true}
		}
		hist = append(hist, porcupine.Operation{ClientId: op.Client, Input: input, Call: op.Call, Output: out, Return: op.Return})
	}
	return porcupineVerdict(lincheck.Check(lincheck.SetModel, hist, PorcupineTimeout))
}

// SetSequential checks ops, with the quiescent reads final, against
// sequential consistency element by element: for each element, one order of
// the operations on it extends every client's program order and gives every
// Contains its result, the finals (one Contains per element, as each
// client's last operation) included; every replica's final must list the
// same elements. Each element's check is an exact search (searchSC),
// exponential in the number of clients, ErrUndecided beyond SearchBudget
// states. Sequential consistency is not compositional, so passing every
// element is necessary, not sufficient, for the whole history.
func SetSequential[E comparable](ops []SetOp[E], final [][]E) error {
	spans := setSpans(ops)
	if _, err := programOrder(spans, len(final)); err != nil {
		return err
	}
	if err := setConverged(final); err != nil {
		return err
	}
	fin, err := setFinals(ops, final, end(spans))
	if err != nil {
		return err
	}
	all := append(ops[:len(ops):len(ops)], fin...)
	for e, part := range partition(all, func(op SetOp[E]) E { return op.Elem }) {
		po, err := programOrder(setSpans(part), len(final))
		if err != nil {
			return err
		}
		progs := make([][]scOp[bool], len(po))
		for c, idx := range po {
			for k, i := range idx {
				op := part[i]
				name := fmt.Sprintf("%s (its operation %d on %v)", op, k, e)
				switch op.Kind {
				case SetContains:
					progs[c] = append(progs[c], scOp[bool]{read: true, at: op.Call, name: name, step: func(in bool) (bool, bool) { return in == op.Result, in }})
				default:
					progs[c] = append(progs[c], scOp[bool]{at: op.Call, name: name, step: func(bool) (bool, bool) { return true, op.Kind == SetAdd }})
				}
			}
		}
		if err := searchSC(progs, false, func(in bool) string { return strconv.FormatBool(in) }, nil, SearchBudget); err != nil {
			return fmt.Errorf("element %v: %w", e, err)
		}
	}
	return nil
}

// partition groups ops by key, keeping their order.
func partition[O any, K comparable](ops []O, key func(O) K) map[K][]O {
	out := make(map[K][]O)
	for _, op := range ops {
		k := key(op)
		out[k] = append(out[k], op)
	}
	return out
}

// setConverged reports finals that do not list the same elements.
func setConverged[E comparable](final [][]E) error {
	if len(final) == 0 {
		return nil
	}
	first := make(map[E]bool)
	for _, e := range final[0] {
		first[e] = true
	}
	for i, f := range final[1:] {
		in := make(map[E]bool)
		for _, e := range f {
			in[e] = true
			if !first[e] {
				return violation("after quiescence and Sync replica %d has %v and replica 0 does not: they did not converge", i+1, e)
			}
		}
		for e := range first {
			if !in[e] {
				return violation("after quiescence and Sync replica 0 has %v and replica %d does not: they did not converge", e, i+1)
			}
		}
	}
	return nil
}

// SetWeak checks ops, with the quiescent reads final, against the weak level
// (an observed-remove set, where an add wins over a concurrent remove). Per
// element, with a client's last update on it and its reads in program order
// (the finals as its last reads):
//
//   - validity: Contains is true only if some add of the element was invoked
//     before it returned;
//   - read-your-writes: after the client's own add, Contains is false only if
//     some other client's remove, invoked before the read returned, returned
//     after the add was invoked (and so may have observed it); after its own
//     remove, Contains is true only if some other client's add was invoked
//     before the read returned (the remove observed the client's own adds);
//   - monotonic reads: with no own update in between, a read that follows a
//     true with false needs another client's remove, and one that follows a
//     false with true another client's add, invoked before it returned;
//   - convergence: every replica's final lists the same elements; an element
//     listed has an add not followed by a remove of its own client, and an
//     element not listed has, for each of its adds, a remove that returned
//     after the add was invoked.
//
// The visible sets are not observable, so these conditions are necessary,
// not sufficient.
func SetWeak[E comparable](ops []SetOp[E], final [][]E) error {
	spans := setSpans(ops)
	if _, err := programOrder(spans, len(final)); err != nil {
		return err
	}
	if err := setConverged(final); err != nil {
		return err
	}
	t := end(spans)
	fin, err := setFinals(ops, final, t)
	if err != nil {
		return err
	}
	all := append(ops[:len(ops):len(ops)], fin...)
	for e, part := range partition(all, func(op SetOp[E]) E { return op.Elem }) {
		po, err := programOrder(setSpans(part), len(final))
		if err != nil {
			return err
		}
		// exists reports whether some operation of the given kind by a client
		// other than c was invoked by `by` and returned at or after `after`.
		exists := func(kind SetKind, c int, by, after int64) bool {
			for _, op := range part {
				if op.Kind == kind && op.Client != c && op.Call <= by && op.Return >= after && op.Return < t {
					return true
				}
			}
			return false
		}
		anyAdd := func(by int64) bool {
			for _, op := range part {
				if op.Kind == SetAdd && op.Call <= by {
					return true
				}
			}
			return false
		}
		for c, idx := range po {
			var upd *SetOp[E]  // the client's last update on e
			var last *SetOp[E] // its last read since that update
			for k, i := range idx {
				op := part[i]
				what := fmt.Sprintf("client %d's %s (its operation %d on %v)", c, op, k, e)
				if op.Call == t {
					what = fmt.Sprintf("client %d's final read: contains(%v) → %v", c, e, op.Result)
				}
				if op.Kind != SetContains {
					upd, last = &part[i], nil
					continue
				}
				switch {
				case op.Result && !anyAdd(op.Return):
					return violation("%s: no add of %v was invoked by then", what, e)
				case upd != nil && upd.Kind == SetAdd && !op.Result && !exists(SetRemove, c, op.Return, upd.Call):
					return violation("%s, after its own %s: no other client's remove could have observed that add (read-your-writes)", what, upd)
				case upd != nil && upd.Kind == SetRemove && op.Result && !exists(SetAdd, c, op.Return, 0):
					return violation("%s, after its own %s: no other client's add could survive that remove (read-your-writes)", what, upd)
				case last != nil && last.Result && !op.Result && !exists(SetRemove, c, op.Return, 0):
					return violation("%s, after reading true: no other client removed %v by then (monotonic reads)", what, e)
				case last != nil && !last.Result && op.Result && !exists(SetAdd, c, op.Return, 0):
					return violation("%s, after reading false: no other client added %v by then (monotonic reads)", what, e)
				}
				last = &part[i]
			}
		}
		if len(final) == 0 {
			continue
		}
		listed := false
		for _, x := range final[0] {
			listed = listed || x == e
		}
		if err := orConverged(part, e, listed, t); err != nil {
			return err
		}
	}
	return nil
}

// orConverged checks the final membership of e against the adds and
// removes of e in part (finals, at time t, excluded).
func orConverged[E comparable](part []SetOp[E], e E, listed bool, t int64) error {
	var adds []int
	for i, op := range part {
		if op.Kind == SetAdd {
			adds = append(adds, i)
		}
	}
	if listed {
		for _, a := range adds {
			removed := false
			for _, op := range part {
				removed = removed || (op.Kind == SetRemove && op.Client == part[a].Client && op.Call >= part[a].Return)
			}
			if !removed {
				return nil
			}
		}
		return violation("every replica lists %v after quiescence, but each of its %d adds was followed by a remove of the same client, which observed it", e, len(adds))
	}
	for _, a := range adds {
		observed := false
		for _, op := range part {
			observed = observed || (op.Kind == SetRemove && op.Return >= part[a].Call && op.Return < t)
		}
		if !observed {
			return violation("no replica lists %v after quiescence, but client %d's %s (at %d) was invoked after every remove of it had returned, so no remove observed it", e, part[a].Client, part[a], part[a].Call)
		}
	}
	return nil
}

package check

import (
	"fmt"
	"maps"
	"strconv"

	"github.com/anishathalye/porcupine"
	"github.com/blossom-dso/blossom/lincheck"
)

// MapKind is the kind of a MapOp.
type MapKind uint8

// The operations of a map.
const (
	MapPut    MapKind = iota // Put(Key, Value)
	MapDelete                // Delete(Key)
	MapGet                   // Get(Key) returned (Value, Found)
)

// MapOp is one completed operation on a map.
type MapOp[K, V comparable] struct {
	Client       int   // the handle that called it
	Call, Return int64 // invocation and response, in one clock for the history
	Kind         MapKind
	Key          K
	Value        V    // what Put wrote or Get returned
	Found        bool // what Get returned
}

func (op MapOp[K, V]) String() string {
	switch op.Kind {
	case MapPut:
		return fmt.Sprintf("put(%v, %v)", op.Key, op.Value)
	case MapDelete:
		return fmt.Sprintf("delete(%v)", op.Key)
	}
	if !op.Found {
		return fmt.Sprintf("get(%v) → absent", op.Key)
	}
	return fmt.Sprintf("get(%v) → %v", op.Key, op.Value)
}

func mapSpans[K, V comparable](ops []MapOp[K, V]) []span {
	s := make([]span, len(ops))
	for i, op := range ops {
		s[i] = span{op.Client, op.Call, op.Return}
	}
	return s
}

// mapFinals turns the quiescent reads (final[i]: replica i's Entries after
// every operation returned and Sync) into one Get per key per replica, for
// every key of the history or of a final, at time t.
func mapFinals[K, V comparable](ops []MapOp[K, V], final []map[K]V, t int64) []MapOp[K, V] {
	var keys []K
	seen := make(map[K]bool)
	note := func(k K) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, op := range ops {
		note(op.Key)
	}
	for _, f := range final {
		for k := range f {
			note(k)
		}
	}
	var out []MapOp[K, V]
	for i, f := range final {
		for _, k := range keys {
			v, ok := f[k]
			out = append(out, MapOp[K, V]{Client: i, Call: t, Return: t + 1, Kind: MapGet, Key: k, Value: v, Found: ok})
		}
	}
	return out
}

// mapConverged reports finals that differ.
func mapConverged[K, V comparable](final []map[K]V) error {
	for i, f := range final {
		if !maps.Equal(f, final[0]) {
			return violation("after quiescence and Sync replicas 0 and %d have different entries (%v and %v): they did not converge", i, final[0], f)
		}
	}
	return nil
}

// MapLinearizable checks that ops, followed by the quiescent reads final
// (final[i]: replica i's Entries after every operation returned and Sync),
// is linearizable, with Porcupine and lincheck.MapModel partitioned by key
// (keys and values are numbered; each final becomes one Get per key). Put
// and Delete return nothing, so their outputs are left unknown. Exact for
// Put, Delete and Get (linearizability is compositional), within
// PorcupineTimeout; a final is checked key by key, not as one snapshot.
func MapLinearizable[K, V comparable](ops []MapOp[K, V], final []map[K]V) error {
	spans := mapSpans(ops)
	if _, err := programOrder(spans, len(final)); err != nil {
		return err
	}
	keys, vals := newInterner[K](), newInterner[V]()
	var hist []porcupine.Operation
	for _, op := range append(ops[:len(ops):len(ops)], mapFinals(ops, final, end(spans))...) {
		in := lincheck.MapInput{Key: strconv.Itoa(keys.id(op.Key)), Value: int64(vals.id(op.Value))}
		out := lincheck.MapOutput{Unknown: true}
		switch op.Kind {
		case MapPut:
			in.Op = lincheck.MapPut
		case MapDelete:
			in.Op, in.Value = lincheck.MapRemove, 0
		default:
			in.Op, in.Value = lincheck.MapGet, 0
			out = lincheck.MapOutput{Value: int64(vals.id(op.Value)), Present: op.Found}
		}
		hist = append(hist, porcupine.Operation{ClientId: op.Client, Input: in, Call: op.Call, Output: out, Return: op.Return})
	}
	return porcupineVerdict(lincheck.Check(lincheck.MapModel, hist, PorcupineTimeout))
}

// mapEntry is the state of one key in the sequential search.
type mapEntry[V comparable] struct {
	v       V
	present bool
}

// MapSequential checks ops, with the quiescent reads final, against
// sequential consistency key by key: for each key, one order of the
// operations on it extends every client's program order and gives every Get
// its result, the finals (one Get per key, as each client's last operation)
// included; every replica's final must be the same map. Each key's check is
// an exact search (searchSC), exponential in the number of clients,
// ErrUndecided beyond SearchBudget states. Sequential consistency is not
// compositional, so passing every key is necessary, not sufficient, for the
// whole history.
func MapSequential[K, V comparable](ops []MapOp[K, V], final []map[K]V) error {
	spans := mapSpans(ops)
	if _, err := programOrder(spans, len(final)); err != nil {
		return err
	}
	if err := mapConverged(final); err != nil {
		return err
	}
	vals := newInterner[V]()
	all := append(ops[:len(ops):len(ops)], mapFinals(ops, final, end(spans))...)
	for k, part := range partition(all, func(op MapOp[K, V]) K { return op.Key }) {
		po, err := programOrder(mapSpans(part), len(final))
		if err != nil {
			return err
		}
		progs := make([][]scOp[mapEntry[V]], len(po))
		for c, idx := range po {
			for n, i := range idx {
				op := part[i]
				name := fmt.Sprintf("%s (its operation %d on %v)", op, n, k)
				switch op.Kind {
				case MapGet:
					progs[c] = append(progs[c], scOp[mapEntry[V]]{read: true, at: op.Call, name: name, step: func(e mapEntry[V]) (bool, mapEntry[V]) {
						return e.present == op.Found && (!e.present || e.v == op.Value), e
					}})
				default:
					progs[c] = append(progs[c], scOp[mapEntry[V]]{at: op.Call, name: name, step: func(mapEntry[V]) (bool, mapEntry[V]) {
						return true, mapEntry[V]{v: op.Value, present: op.Kind == MapPut}
					}})
				}
			}
		}
		key := func(e mapEntry[V]) string {
			if !e.present {
				return "-"
			}
			return strconv.Itoa(vals.id(e.v))
		}
		if err := searchSC(progs, mapEntry[V]{}, key, nil, SearchBudget); err != nil {
			return fmt.Errorf("key %v: %w", k, err)
		}
	}
	return nil
}

// MapWeak checks ops, with the quiescent reads final, against the weak
// level (a last-writer-wins map with Lamport timestamps, a delete writing a
// tombstone), for histories whose puts to one key write distinct values
// (ErrUndecided otherwise). Per key, as for RegisterWeak: some total order
// of the puts and deletes (the stamps) makes each client's gets return
// non-decreasing writes, never older than its own last write, makes each
// write newer than everything its client wrote or read before, and ends
// with the write every replica reads after quiescence and Sync; every value
// a get returns was put by a put invoked before it returned. A get that
// finds the key absent names no write (any delete, or none, may explain
// it), so it only requires, after the client wrote or read a value, some
// delete of the key invoked before it returned; the conditions are
// necessary, not sufficient.
func MapWeak[K, V comparable](ops []MapOp[K, V], final []map[K]V) error {
	spans := mapSpans(ops)
	if _, err := programOrder(spans, len(final)); err != nil {
		return err
	}
	if err := mapConverged(final); err != nil {
		return err
	}
	t := end(spans)
	all := append(ops[:len(ops):len(ops)], mapFinals(ops, final, t)...)
	g := newOrderGraph(func(i int) string { return fmt.Sprintf("client %d's %s", all[i].Client, all[i]) })
	type keyed struct {
		op  MapOp[K, V]
		idx int
	}
	byKey := make(map[K][]keyed)
	for i, op := range all {
		byKey[op.Key] = append(byKey[op.Key], keyed{op, i})
	}
	for k, part := range byKey {
		putOf := make(map[V]int)
		var deletes []int
		for _, p := range part {
			switch p.op.Kind {
			case MapPut:
				if j, dup := putOf[p.op.Value]; dup {
					return undecided("clients %d and %d both put %v to %v: the weak map check needs unique values per key", all[j].Client, p.op.Client, p.op.Value, k)
				}
				putOf[p.op.Value] = p.idx
			case MapDelete:
				deletes = append(deletes, p.idx)
			}
		}
		spans := make([]span, len(part))
		for i, p := range part {
			spans[i] = span{p.op.Client, p.op.Call, p.op.Return}
		}
		po, err := programOrder(spans, len(final))
		if err != nil {
			return err
		}
		for c, idx := range po {
			cur := -1 // the client's current write on k (-1: the initial absence)
			for n, i := range idx {
				op, self := part[i].op, part[i].idx
				what := fmt.Sprintf("client %d's %s (its operation %d on %v)", c, op, n, k)
				if op.Call == t {
					what = fmt.Sprintf("client %d's final read: %s", c, op)
				}
				switch {
				case op.Kind != MapGet:
					if cur >= 0 {
						g.edge(cur, self, fmt.Sprintf("client %d saw %s first", c, all[cur]))
					}
					cur = self
				case op.Found:
					w, ok := putOf[op.Value]
					if !ok {
						return violation("%s: nobody put %v to %v", what, op.Value, k)
					}
					if all[w].Call > op.Return {
						return violation("%s: the put of %v was invoked only after the get returned", what, op.Value)
					}
					if cur >= 0 && cur != w {
						g.edge(cur, w, fmt.Sprintf("client %d saw %s first, then read %v", c, all[cur], op.Value))
					}
					cur = w
				case cur >= 0 && all[cur].Kind == MapPut:
					deleted := false
					for _, d := range deletes {
						deleted = deleted || all[d].Call <= op.Return
					}
					if !deleted {
						return violation("%s after it saw %s, and no delete of %v was invoked by then", what, all[cur], k)
					}
				}
			}
		}
		if len(final) == 0 {
			continue
		}
		v, present := final[0][k]
		switch {
		case present:
			if out := g.out[putOf[v]]; len(out) > 0 {
				return violation("every replica reads %v for %v after quiescence, but %s must be newer: %s", v, k, g.name(out[0].to), out[0].why)
			}
		case len(putOf) > 0:
			sink := false
			for _, d := range deletes {
				sink = sink || len(g.out[d]) == 0
			}
			if !sink {
				return violation("no replica has %v after quiescence, but no delete of it can be its last write (%d puts, %d deletes)", k, len(putOf), len(deletes))
			}
		}
	}
	return g.acyclic()
}

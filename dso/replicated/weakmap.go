package replicated

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/wire"
)

// weakMap is a Map of a weak table. Its updates are merges (merge,
// mergeAll) with the combiners sum (integers), max and min, which a weak
// table's replicas execute in different orders. Each combiner commutes
// with itself but not with the others (merging 5 with sum then 3 with max
// gives 5, the other order 8), so a key keeps, per combiner, what its
// merges with that combiner add up to: the sum of its sum-merges, the max
// of its max-merges and the min of its min-merges (nil for a combiner it
// never received). The key's value is that of merging them in a fixed
// order, whatever order the merges came in: the sum first, then the max,
// then the min (dso.Combine), so min(max(sum, max), min) when all three
// were seen. Every replica that received the same merges reads the same
// value. A merge answers the key's value after it; mergeAll the number of
// keys; the reads (get, getOrDefault, containsKey, keySet, values,
// entries, toMap, size) read the values.
type weakMap struct {
	m map[string]*mergedEntry
}

// mergedEntry is what the merges of one key add up to, per combiner: nil
// for a combiner the key never received, else an int64 for sum and a
// number for max and min.
type mergedEntry struct {
	sum, max, min any
}

func newWeakMap([]any) (dso.Object, error) {
	return &weakMap{m: map[string]*mergedEntry{}}, nil
}

// value is the entry's value: its sum, then merged with its max, then
// with its min.
func (e *mergedEntry) value() any {
	v := e.sum
	for _, c := range [...]struct {
		name string
		x    any
	}{{"max", e.max}, {"min", e.min}} {
		if c.x != nil {
			v, _ = dso.Combine(c.name, v, c.x) // numbers: cannot fail
		}
	}
	return v
}

// merged returns e (nil: an absent key) after a merge (inv) of v with comb,
// leaving e as it was; it fails, changing nothing, if comb is not sum,
// max or min, v is not a number (an integer for sum), or a sum overflows.
func merged(inv *dso.Invocation, e *mergedEntry, comb string, v any) (*mergedEntry, error) {
	out := &mergedEntry{}
	if e != nil {
		*out = *e
	}
	var slot *any
	switch comb {
	case "sum":
		if _, ok := v.(int64); !ok {
			return nil, fmt.Errorf("%w: %s.%s at the weak level sums integers only (sums of floats depend on their order), not %T", dso.ErrBadArgs, inv.Ref, inv.Method, v)
		}
		slot = &out.sum
	case "max":
		slot = &out.max
	case "min":
		slot = &out.min
	default:
		return nil, fmt.Errorf("%w: %s.%s at the weak level takes the combiner sum, max or min, not %q (replace does not commute)", dso.ErrBadArgs, inv.Ref, inv.Method, comb)
	}
	nv, err := dso.Combine(comb, *slot, v)
	if err != nil {
		return nil, err
	}
	*slot = nv
	return out, nil
}

func (o *weakMap) Invoke(inv *dso.Invocation) (any, error) {
	switch inv.Method {
	case "merge":
		if inv.Arity(2, 3) {
			k, comb := inv.String(0), inv.StringOr(2, "sum")
			if inv.Err() != nil {
				return nil, inv.Err()
			}
			e, err := merged(inv, o.m[k], comb, inv.Args[1])
			if err != nil {
				return nil, err
			}
			o.m[k] = e
			return e.value(), nil
		}
	case "mergeAll":
		if inv.Arity(1, 2) {
			in, comb := inv.Map(0), inv.StringOr(1, "sum")
			if inv.Err() != nil {
				return nil, inv.Err()
			}
			if _, err := merged(inv, nil, comb, int64(0)); err != nil { // also with no entries
				return nil, err
			}
			out := make(map[string]*mergedEntry, len(in)) // every entry checked first: a bad one changes nothing
			for _, k := range slices.Sorted(maps.Keys(in)) {
				e, err := merged(inv, o.m[k], comb, in[k])
				if err != nil {
					return nil, fmt.Errorf("entry %q: %w", k, err)
				}
				out[k] = e
			}
			maps.Copy(o.m, out)
			return int64(len(o.m)), nil
		}
	case "get":
		if inv.Arity(1, 1) {
			k := inv.String(0)
			if e := o.m[k]; e != nil {
				return e.value(), inv.Err()
			}
			return nil, inv.Err()
		}
	case "getOrDefault":
		if inv.Arity(2, 2) {
			k := inv.String(0)
			if e := o.m[k]; e != nil {
				return e.value(), inv.Err()
			}
			return inv.Args[1], inv.Err()
		}
	case "containsKey":
		if inv.Arity(1, 1) {
			return o.m[inv.String(0)] != nil, inv.Err()
		}
	case "keySet":
		if inv.Arity(0, 0) {
			return slices.Sorted(maps.Keys(o.m)), nil
		}
	case "values":
		if inv.Arity(0, 0) {
			vs := make([]any, 0, len(o.m))
			for _, k := range slices.Sorted(maps.Keys(o.m)) {
				vs = append(vs, o.m[k].value())
			}
			return vs, nil
		}
	case "entries", "toMap":
		if inv.Arity(0, 0) {
			out := make(map[string]any, len(o.m))
			for k, e := range o.m {
				out[k] = e.value()
			}
			return out, nil
		}
	case "size":
		if inv.Arity(0, 0) {
			return int64(len(o.m)), nil
		}
	default:
		return nil, fmt.Errorf("%w: %s has no method %q at the weak level (methods: %v)", dso.ErrBadArgs, inv.Ref, inv.Method, WeakMethods(dso.TypeMap))
	}
	return nil, inv.Err()
}

// ReadOnly implements dso.ReadOnlyMethods.
func (o *weakMap) ReadOnly(method string) bool {
	switch method {
	case "get", "getOrDefault", "containsKey", "keySet", "values", "entries", "toMap", "size":
		return true
	}
	return false
}

// MarshalState implements dso.Persister: [{key: [sum, max, min]}], nil
// for a combiner the key never received.
func (o *weakMap) MarshalState() ([]byte, error) {
	m := make(map[string]any, len(o.m))
	for k, e := range o.m {
		m[k] = []any{e.sum, e.max, e.min}
	}
	return dso.AppendCanonical(nil, []any{m})
}

// UnmarshalState implements dso.Persister. It also takes the library
// Map's state (a weak table's before the rule above: {key: value}), in
// which it takes an integer for the sum of the key's sum-merges and a
// float for the max of its max-merges, so that every value reads as it
// did.
func (o *weakMap) UnmarshalState(b []byte) error {
	v, err := wire.DecodeValue(b)
	if err != nil {
		return err
	}
	m := map[string]*mergedEntry{}
	if legacy, ok := v.(map[string]any); ok {
		for k, x := range legacy {
			switch x.(type) {
			case int64:
				m[k] = &mergedEntry{sum: x}
			case float64:
				m[k] = &mergedEntry{max: x}
			default:
				return fmt.Errorf("weak map state: the value of %q is not a number", k)
			}
		}
		o.m = m
		return nil
	}
	l, ok := v.([]any)
	if !ok || len(l) != 1 {
		return errors.New("weak map state: not [entries]")
	}
	entries, ok := l[0].(map[string]any)
	if !ok {
		return errors.New("weak map state: the entries are not a map")
	}
	for k, x := range entries {
		p, ok := x.([]any)
		if !ok || len(p) != 3 || (p[0] == nil && p[1] == nil && p[2] == nil) {
			return fmt.Errorf("weak map state: the entry of %q is not [sum, max, min] with one of them set", k)
		}
		if _, isInt := p[0].(int64); p[0] != nil && !isInt {
			return fmt.Errorf("weak map state: the sum of %q is not an integer", k)
		}
		for _, n := range p[1:] {
			if _, isNum := dso.AsFloat(n); n != nil && !isNum {
				return fmt.Errorf("weak map state: the max or min of %q is not a number", k)
			}
		}
		m[k] = &mergedEntry{sum: p[0], max: p[1], min: p[2]}
	}
	o.m = m
	return nil
}

package dso

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"

	"github.com/blossom-dso/blossom/dso/wire"
)

// Type names of the collections.
const (
	TypeMap     = "Map"
	TypeSet     = "Set"
	TypeList    = "List"
	TypeTreeMap = "TreeMap"
	TypeMatrix  = "Matrix"
	TypeBlob    = "Blob"
)

func init() {
	library[TypeMap] = func([]any) (Object, error) { return &mapObject{m: map[string]any{}}, nil }
	library[TypeSet] = func([]any) (Object, error) { return &setObject{m: map[string]any{}}, nil }
	library[TypeList] = func([]any) (Object, error) { return &listObject{}, nil }
	library[TypeTreeMap] = func([]any) (Object, error) { return &treeMap{m: map[string]any{}}, nil }
	library[TypeMatrix] = newMatrix
	library[TypeBlob] = func([]any) (Object, error) { return &blob{}, nil }
}

// Combine applies a named combiner (sum, max, min, replace) to the current
// value of a map entry (nil when absent) and a new value.
// The combiner's name is checked even when the entry is absent. A sum of
// two integers that overflows int64 fails with ErrOverflow.
func Combine(name string, cur, v any) (any, error) {
	if !validCombiner(name) {
		return nil, fmt.Errorf("%w: unknown combiner %q (sum, max, min, replace)", ErrBadArgs, name)
	}
	if cur == nil || name == "replace" {
		if name != "replace" {
			if _, ok := AsFloat(v); !ok {
				return nil, fmt.Errorf("%w: combiner %s needs a number, got %s", ErrBadArgs, name, typeName(v))
			}
		}
		return v, nil
	}
	ci, cInt := cur.(int64)
	vi, vInt := v.(int64)
	if cInt && vInt {
		switch name {
		case "sum":
			return addExact(ci, vi, 64)
		case "max":
			return max(ci, vi), nil
		case "min":
			return min(ci, vi), nil
		}
	} else {
		cf, ok1 := AsFloat(cur)
		vf, ok2 := AsFloat(v)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: combiner %s needs numbers, got %s and %s", ErrBadArgs, name, typeName(cur), typeName(v))
		}
		switch name {
		case "sum":
			return cf + vf, nil
		case "max":
			return math.Max(cf, vf), nil
		case "min":
			return math.Min(cf, vf), nil
		}
	}
	return nil, fmt.Errorf("%w: unknown combiner %q (sum, max, min, replace)", ErrBadArgs, name)
}

func validCombiner(name string) bool {
	return name == "sum" || name == "max" || name == "min" || name == "replace"
}

// mapObject is a hash map from string keys to values.
type mapObject struct{ m map[string]any }

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (o *mapObject) Invoke(inv *Invocation) (any, error) {
	switch inv.Method {
	case "get":
		if inv.Arity(1, 1) {
			k := inv.String(0)
			return o.m[k], inv.Err()
		}
	case "getOrDefault":
		if inv.Arity(2, 2) {
			k := inv.String(0)
			if v, ok := o.m[k]; ok {
				return v, inv.Err()
			}
			return inv.Args[1], inv.Err()
		}
	case "containsKey":
		if inv.Arity(1, 1) {
			_, ok := o.m[inv.String(0)]
			return ok, inv.Err()
		}
	case "put", "putIfAbsent":
		if inv.Arity(2, 2) {
			k := inv.String(0)
			if inv.Err() != nil {
				return nil, inv.Err()
			}
			old, ok := o.m[k]
			if inv.Method == "put" || !ok {
				o.m[k] = inv.Args[1]
			}
			return old, nil
		}
	case "remove":
		if inv.Arity(1, 1) {
			k := inv.String(0)
			old := o.m[k]
			delete(o.m, k)
			return old, inv.Err()
		}
	case "merge":
		if inv.Arity(2, 3) {
			k, comb := inv.String(0), inv.StringOr(2, "sum")
			if inv.Err() != nil {
				return nil, inv.Err()
			}
			nv, err := Combine(comb, o.m[k], inv.Args[1])
			if err != nil {
				return nil, err
			}
			o.m[k] = nv
			return nv, nil
		}
	case "mergeAll":
		if inv.Arity(1, 2) {
			in, comb := inv.Map(0), inv.StringOr(1, "sum")
			if inv.Err() != nil {
				return nil, inv.Err()
			}
			if !validCombiner(comb) {
				return nil, fmt.Errorf("%w: unknown combiner %q (sum, max, min, replace)", ErrBadArgs, comb)
			}
			// Check every entry first so that a bad one changes nothing.
			out := make(map[string]any, len(in))
			for k, v := range in {
				nv, err := Combine(comb, o.m[k], v)
				if err != nil {
					return nil, fmt.Errorf("entry %q: %w", k, err)
				}
				out[k] = nv
			}
			for k, v := range out {
				o.m[k] = v
			}
			return int64(len(o.m)), nil
		}
	case "keySet":
		if inv.Arity(0, 0) {
			return sortedKeys(o.m), nil
		}
	case "values":
		if inv.Arity(0, 0) {
			vs := make([]any, 0, len(o.m))
			for _, k := range sortedKeys(o.m) {
				vs = append(vs, o.m[k])
			}
			return vs, nil
		}
	case "entries", "toMap":
		if inv.Arity(0, 0) {
			out := make(map[string]any, len(o.m))
			for k, v := range o.m {
				out[k] = v
			}
			return out, nil
		}
	case "size":
		if inv.Arity(0, 0) {
			return int64(len(o.m)), nil
		}
	case "clear":
		if inv.Arity(0, 0) {
			clear(o.m)
			return nil, nil
		}
	default:
		return nil, unknownMethod(inv)
	}
	return nil, inv.Err()
}

// scalarKey returns the canonical encoding of a scalar value, used as the
// identity of set members.
func scalarKey(inv *Invocation, i int) (string, bool) {
	v := inv.Value(i)
	if inv.Err() != nil {
		return "", false
	}
	switch v.(type) {
	case nil, bool, int64, float64, string, []byte:
		b, _ := wire.AppendValue(nil, v)
		return string(b), true
	}
	inv.argErr(i, "scalar (nil, bool, int, float, string, bytes)", v)
	return "", false
}

// setObject is a set of scalar values.
type setObject struct{ m map[string]any }

func (o *setObject) members() []any {
	ks := make([]string, 0, len(o.m))
	for k := range o.m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	out := make([]any, len(ks))
	for i, k := range ks {
		out[i] = o.m[k]
	}
	return out
}

func (o *setObject) Invoke(inv *Invocation) (any, error) {
	switch inv.Method {
	case "add", "remove", "contains":
		if inv.Arity(1, 1) {
			k, ok := scalarKey(inv, 0)
			if !ok {
				return nil, inv.Err()
			}
			_, in := o.m[k]
			switch inv.Method {
			case "add":
				o.m[k] = inv.Args[0]
				return !in, nil
			case "remove":
				delete(o.m, k)
			}
			return in, nil
		}
	case "addAll":
		// addAll(list) adds every element of list, all scalars (else
		// nothing is added), and returns how many were not in the set.
		if inv.Arity(1, 1) {
			l, ok := inv.Value(0).([]any)
			if !ok {
				inv.argErr(0, "list", inv.Value(0))
				return nil, inv.Err()
			}
			keys := make([]string, len(l))
			for i, v := range l {
				switch v.(type) {
				case nil, bool, int64, float64, string, []byte:
				default:
					return nil, fmt.Errorf("%w: addAll: element %d is %s, not a scalar (nil, bool, int, float, string, bytes)", ErrBadArgs, i, typeName(v))
				}
				b, _ := wire.AppendValue(nil, v)
				keys[i] = string(b)
			}
			var added int64
			for i, k := range keys {
				if _, in := o.m[k]; !in {
					added++
				}
				o.m[k] = l[i]
			}
			return added, nil
		}
	case "size":
		if inv.Arity(0, 0) {
			return int64(len(o.m)), nil
		}
	case "members", "toList":
		if inv.Arity(0, 0) {
			return o.members(), nil
		}
	case "clear":
		if inv.Arity(0, 0) {
			clear(o.m)
			return nil, nil
		}
	default:
		return nil, unknownMethod(inv)
	}
	return nil, inv.Err()
}

// listObject is an array list.
type listObject struct{ l []any }

func (o *listObject) index(inv *Invocation, i int, allowEnd bool) (int, bool) {
	x := inv.Int(i)
	if inv.Err() != nil {
		return 0, false
	}
	n := int64(len(o.l))
	if allowEnd {
		n++
	}
	if x < 0 || x >= n {
		inv.err = fmt.Errorf("%w: index %d out of range for a list of %d", ErrFailed, x, len(o.l))
		return 0, false
	}
	return int(x), true
}

func (o *listObject) find(v any) int {
	for i, e := range o.l {
		if reflect.DeepEqual(e, v) {
			return i
		}
	}
	return -1
}

func (o *listObject) Invoke(inv *Invocation) (any, error) {
	switch inv.Method {
	case "add":
		if inv.Arity(1, 1) {
			o.l = append(o.l, inv.Args[0])
			return true, nil
		}
	case "addAt":
		if inv.Arity(2, 2) {
			if i, ok := o.index(inv, 0, true); ok {
				o.l = slices.Insert(o.l, i, inv.Args[1])
				return nil, nil
			}
		}
	case "get":
		if inv.Arity(1, 1) {
			if i, ok := o.index(inv, 0, false); ok {
				return o.l[i], nil
			}
		}
	case "set":
		if inv.Arity(2, 2) {
			if i, ok := o.index(inv, 0, false); ok {
				old := o.l[i]
				o.l[i] = inv.Args[1]
				return old, nil
			}
		}
	case "removeAt":
		if inv.Arity(1, 1) {
			if i, ok := o.index(inv, 0, false); ok {
				old := o.l[i]
				o.l = slices.Delete(o.l, i, i+1)
				return old, nil
			}
		}
	case "remove":
		if inv.Arity(1, 1) {
			if i := o.find(inv.Args[0]); i >= 0 {
				o.l = slices.Delete(o.l, i, i+1)
				return true, nil
			}
			return false, nil
		}
	case "indexOf":
		if inv.Arity(1, 1) {
			return int64(o.find(inv.Args[0])), nil
		}
	case "contains":
		if inv.Arity(1, 1) {
			return o.find(inv.Args[0]) >= 0, nil
		}
	case "size":
		if inv.Arity(0, 0) {
			return int64(len(o.l)), nil
		}
	case "toList":
		if inv.Arity(0, 0) {
			return slices.Clone(o.l), nil
		}
	case "subList":
		if inv.Arity(2, 2) {
			from, ok1 := o.index(inv, 0, true)
			to, ok2 := o.index(inv, 1, true)
			if ok1 && ok2 {
				if from > to {
					return nil, fmt.Errorf("%w: subList from %d > to %d", ErrFailed, from, to)
				}
				return slices.Clone(o.l[from:to]), nil
			}
		}
	case "clear":
		if inv.Arity(0, 0) {
			o.l = nil
			return nil, nil
		}
	default:
		return nil, unknownMethod(inv)
	}
	return nil, inv.Err()
}

// treeMap is a map sorted by key, with first/last and range queries.
type treeMap struct {
	keys []string // sorted
	m    map[string]any
}

func (o *treeMap) pos(k string) (int, bool) { return slices.BinarySearch(o.keys, k) }

func (o *treeMap) keyOrNil(i int) any {
	if i < 0 || i >= len(o.keys) {
		return nil
	}
	return o.keys[i]
}

func (o *treeMap) Invoke(inv *Invocation) (any, error) {
	switch inv.Method {
	case "put":
		if inv.Arity(2, 2) {
			k := inv.String(0)
			if inv.Err() != nil {
				return nil, inv.Err()
			}
			old, ok := o.m[k]
			if !ok {
				i, _ := o.pos(k)
				o.keys = slices.Insert(o.keys, i, k)
			}
			o.m[k] = inv.Args[1]
			return old, nil
		}
	case "get":
		if inv.Arity(1, 1) {
			return o.m[inv.String(0)], inv.Err()
		}
	case "containsKey":
		if inv.Arity(1, 1) {
			_, ok := o.m[inv.String(0)]
			return ok, inv.Err()
		}
	case "remove":
		if inv.Arity(1, 1) {
			k := inv.String(0)
			old, ok := o.m[k]
			if ok {
				i, _ := o.pos(k)
				o.keys = slices.Delete(o.keys, i, i+1)
				delete(o.m, k)
			}
			return old, inv.Err()
		}
	case "size":
		if inv.Arity(0, 0) {
			return int64(len(o.keys)), nil
		}
	case "firstKey":
		if inv.Arity(0, 0) {
			return o.keyOrNil(0), nil
		}
	case "lastKey":
		if inv.Arity(0, 0) {
			return o.keyOrNil(len(o.keys) - 1), nil
		}
	case "ceilingKey", "floorKey", "higherKey", "lowerKey":
		if inv.Arity(1, 1) {
			k := inv.String(0)
			i, found := o.pos(k)
			switch inv.Method {
			case "floorKey":
				if !found {
					i--
				}
			case "higherKey":
				if found {
					i++
				}
			case "lowerKey":
				i--
			}
			return o.keyOrNil(i), inv.Err()
		}
	case "range":
		// range(from, to): entries with from <= key < to, as [key, value]
		// pairs in key order; an empty to means no upper bound.
		if inv.Arity(2, 2) {
			from, to := inv.String(0), inv.String(1)
			if inv.Err() != nil {
				return nil, inv.Err()
			}
			i, _ := o.pos(from)
			out := []any{}
			for ; i < len(o.keys) && (to == "" || o.keys[i] < to); i++ {
				out = append(out, []any{o.keys[i], o.m[o.keys[i]]})
			}
			return out, nil
		}
	case "keySet":
		if inv.Arity(0, 0) {
			return slices.Clone(o.keys), nil
		}
	case "clear":
		if inv.Arity(0, 0) {
			o.keys = nil
			clear(o.m)
			return nil, nil
		}
	default:
		return nil, unknownMethod(inv)
	}
	return nil, inv.Err()
}

// matrix is a dense rows × cols matrix of float64.
type matrix struct {
	rows, cols int
	v          []float64
}

// MaxMatrixCells bounds the size of a Matrix.
const MaxMatrixCells = 16 << 20

func newMatrix(args []any) (Object, error) {
	r, err := ctorInt(args, 0, "rows", 0)
	if err != nil {
		return nil, err
	}
	c, err := ctorInt(args, 1, "cols", 0)
	if err != nil {
		return nil, err
	}
	if r < 0 || c < 0 || (c > 0 && r > MaxMatrixCells/c) {
		return nil, fmt.Errorf("%w: Matrix %d×%d is negative or larger than %d cells", ErrBadArgs, r, c, MaxMatrixCells)
	}
	return &matrix{rows: int(r), cols: int(c), v: make([]float64, r*c)}, nil
}

func (o *matrix) cell(inv *Invocation) (int, bool) {
	i, j := inv.Int(0), inv.Int(1)
	if inv.Err() != nil {
		return 0, false
	}
	if i < 0 || j < 0 || i >= int64(o.rows) || j >= int64(o.cols) {
		inv.err = fmt.Errorf("%w: cell (%d, %d) outside a %d×%d matrix", ErrFailed, i, j, o.rows, o.cols)
		return 0, false
	}
	return int(i)*o.cols + int(j), true
}

func (o *matrix) row(inv *Invocation) (int, bool) {
	i := inv.Int(0)
	if inv.Err() != nil {
		return 0, false
	}
	if i < 0 || i >= int64(o.rows) {
		inv.err = fmt.Errorf("%w: row %d outside a %d×%d matrix", ErrFailed, i, o.rows, o.cols)
		return 0, false
	}
	return int(i), true
}

func (o *matrix) Invoke(inv *Invocation) (any, error) {
	switch inv.Method {
	case "rows":
		if inv.Arity(0, 0) {
			return int64(o.rows), nil
		}
	case "cols":
		if inv.Arity(0, 0) {
			return int64(o.cols), nil
		}
	case "get":
		if inv.Arity(2, 2) {
			if c, ok := o.cell(inv); ok {
				return o.v[c], nil
			}
		}
	case "set", "add":
		if inv.Arity(3, 3) {
			if c, ok := o.cell(inv); ok {
				x := inv.Float(2)
				if inv.Err() != nil {
					return nil, inv.Err()
				}
				if inv.Method == "set" {
					o.v[c] = x
					return nil, nil
				}
				o.v[c] += x
				return o.v[c], nil
			}
		}
	case "getRow":
		if inv.Arity(1, 1) {
			if r, ok := o.row(inv); ok {
				return slices.Clone(o.v[r*o.cols : (r+1)*o.cols]), nil
			}
		}
	case "setRow", "addRow":
		if inv.Arity(2, 2) {
			if r, ok := o.row(inv); ok {
				xs := inv.Floats(1)
				if inv.Err() != nil {
					return nil, inv.Err()
				}
				if len(xs) != o.cols {
					return nil, fmt.Errorf("%w: row of %d values for a matrix of %d columns", ErrBadArgs, len(xs), o.cols)
				}
				dst := o.v[r*o.cols : (r+1)*o.cols]
				for k, x := range xs {
					if inv.Method == "setRow" {
						dst[k] = x
					} else {
						dst[k] += x
					}
				}
				return nil, nil
			}
		}
	case "toArray":
		if inv.Arity(0, 0) {
			return slices.Clone(o.v), nil
		}
	default:
		return nil, unknownMethod(inv)
	}
	return nil, inv.Err()
}

// blob is an opaque byte string with whole and ranged reads and writes.
type blob struct{ b []byte }

// MaxBlob bounds the size of a Blob.
const MaxBlob = 256 << 20

func (o *blob) Invoke(inv *Invocation) (any, error) {
	switch inv.Method {
	case "read", "get":
		if inv.Arity(0, 0) {
			return slices.Clone(o.b), nil
		}
	case "write", "set":
		if inv.Arity(1, 1) {
			p := inv.Bytes(0)
			if inv.Err() == nil {
				o.b = slices.Clone(p)
				return int64(len(o.b)), nil
			}
		}
	case "append":
		if inv.Arity(1, 1) {
			p := inv.Bytes(0)
			if inv.Err() == nil {
				if len(o.b)+len(p) > MaxBlob {
					return nil, fmt.Errorf("%w: blob would exceed %d bytes", ErrTooLarge, MaxBlob)
				}
				o.b = append(o.b, p...)
				return int64(len(o.b)), nil
			}
		}
	case "size":
		if inv.Arity(0, 0) {
			return int64(len(o.b)), nil
		}
	case "readAt":
		if inv.Arity(2, 2) {
			off, n := inv.Int(0), inv.Int(1)
			if inv.Err() != nil {
				return nil, inv.Err()
			}
			if off < 0 || n < 0 || off > int64(len(o.b)) {
				return nil, fmt.Errorf("%w: readAt(%d, %d) on a blob of %d bytes", ErrFailed, off, n, len(o.b))
			}
			end := min(off+n, int64(len(o.b)))
			return slices.Clone(o.b[off:end]), nil
		}
	case "writeAt":
		if inv.Arity(2, 2) {
			off, p := inv.Int(0), inv.Bytes(1)
			if inv.Err() != nil {
				return nil, inv.Err()
			}
			if off < 0 || off > int64(len(o.b)) || off+int64(len(p)) > MaxBlob {
				return nil, fmt.Errorf("%w: writeAt(%d) on a blob of %d bytes", ErrFailed, off, len(o.b))
			}
			if end := int(off) + len(p); end > len(o.b) {
				o.b = append(o.b, make([]byte, end-len(o.b))...)
			}
			copy(o.b[off:], p)
			return int64(len(o.b)), nil
		}
	default:
		return nil, unknownMethod(inv)
	}
	return nil, inv.Err()
}

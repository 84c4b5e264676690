// Package statehash computes canonical 64-bit hashes of in-memory values,
// for the state hashing of schedule exploration (simnet/explore): two
// values with equal contents hash alike wherever they live in memory, and
// maps hash alike whatever their iteration order.
//
// A hash covers everything reachable from the value: numbers, strings,
// slices (and whether they are nil), maps (as sets of entries), pointers
// (through to what they point to), interfaces (their dynamic type and
// value), unexported fields included. It leaves out only what has no
// content to compare: functions, channels and unsafe pointers count only
// as nil or not. A pointer back to a value being hashed (a cycle) is
// hashed as a reference to it. Sharing is not seen: one object reached
// through two pointers hashes like two equal copies. Equal hashes of
// unequal values are possible (a 64-bit hash); the explorer accepts both
// risks.
package statehash

import (
	"math"
	"reflect"
	"slices"
	"sync"
)

const (
	offset = 14695981039346656037
	prime  = 1099511628211
)

// Hash accumulates the contents of values. The zero Hash is not ready;
// use New.
type Hash struct {
	h     uint64
	stack map[visit]int
}

type visit struct {
	p uintptr
	t reflect.Type
}

// New returns an empty Hash.
func New() *Hash { return &Hash{h: offset} }

// Sum returns the hash of everything added so far.
func (h *Hash) Sum() uint64 { return h.h }

// Uint64 adds the number x.
func (h *Hash) Uint64(x uint64) {
	h.h ^= x
	h.h *= prime
	h.h ^= h.h >> 29
}

// String adds s (its length, then its bytes).
func (h *Hash) String(s string) {
	h.Uint64(uint64(len(s)))
	for len(s) >= 8 {
		h.Uint64(uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56)
		s = s[8:]
	}
	var w uint64
	for i := 0; i < len(s); i++ {
		w |= uint64(s[i]) << (8 * i)
	}
	h.Uint64(w)
}

// Bytes adds b (its length, then its bytes; nil and empty alike).
func (h *Hash) Bytes(b []byte) { h.String(string(b)) }

// Add adds the contents of v.
func (h *Hash) Add(v any) { h.value(reflect.ValueOf(v)) }

// AddFields adds the contents of *v, a pointer to a struct, leaving out
// the fields named in skip (which must exist: a misspelt name panics, so
// that a renamed field cannot silently join the hash).
func (h *Hash) AddFields(v any, skip ...string) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		panic("statehash: AddFields needs a pointer to a struct")
	}
	if rv.IsNil() {
		h.Uint64(0)
		return
	}
	st := rv.Elem()
	t := st.Type()
	for _, name := range skip {
		if _, ok := t.FieldByName(name); !ok {
			panic("statehash: " + t.String() + " has no field " + name)
		}
	}
	h.Uint64(typeHash(t))
	k := h.push(rv)
	for i := range st.NumField() {
		if slices.Contains(skip, t.Field(i).Name) {
			continue
		}
		h.value(st.Field(i))
	}
	h.pop(k)
}

// Of returns the hash of v's contents (AddFields if skip is not empty).
func Of(v any, skip ...string) uint64 {
	h := New()
	if len(skip) > 0 {
		h.AddFields(v, skip...)
	} else {
		h.Add(v)
	}
	return h.Sum()
}

var typeHashes sync.Map // reflect.Type -> uint64

func typeHash(t reflect.Type) uint64 {
	if x, ok := typeHashes.Load(t); ok {
		return x.(uint64)
	}
	h := New()
	h.String(t.PkgPath() + "." + t.String())
	typeHashes.Store(t, h.Sum())
	return h.Sum()
}

func (h *Hash) push(v reflect.Value) visit {
	k := visit{v.Pointer(), v.Type()}
	if h.stack == nil {
		h.stack = map[visit]int{}
	}
	h.stack[k] = len(h.stack) + 1
	return k
}

func (h *Hash) pop(k visit) { delete(h.stack, k) }

func (h *Hash) value(v reflect.Value) {
	if !v.IsValid() {
		h.Uint64(0)
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			h.Uint64(1)
		} else {
			h.Uint64(2)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		h.Uint64(uint64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		h.Uint64(v.Uint())
	case reflect.Float32, reflect.Float64:
		h.Uint64(math.Float64bits(v.Float()))
	case reflect.Complex64, reflect.Complex128:
		c := v.Complex()
		h.Uint64(math.Float64bits(real(c)))
		h.Uint64(math.Float64bits(imag(c)))
	case reflect.String:
		h.String(v.String())
	case reflect.Slice:
		if v.IsNil() {
			h.Uint64(0)
			return
		}
		h.Uint64(1)
		if v.Type().Elem().Kind() == reflect.Uint8 {
			h.Bytes(v.Bytes())
			return
		}
		h.Uint64(uint64(v.Len()))
		for i := range v.Len() {
			h.value(v.Index(i))
		}
	case reflect.Array:
		for i := range v.Len() {
			h.value(v.Index(i))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			h.value(v.Field(i))
		}
	case reflect.Pointer:
		if v.IsNil() {
			h.Uint64(0)
			return
		}
		k := visit{v.Pointer(), v.Type()}
		if d, ok := h.stack[k]; ok {
			h.Uint64(3)
			h.Uint64(uint64(d))
			return
		}
		h.Uint64(1)
		k = h.push(v)
		h.value(v.Elem())
		h.pop(k)
	case reflect.Interface:
		if v.IsNil() {
			h.Uint64(0)
			return
		}
		e := v.Elem()
		h.Uint64(typeHash(e.Type()))
		h.value(e)
	case reflect.Map:
		if v.IsNil() {
			h.Uint64(0)
			return
		}
		h.Uint64(1)
		h.Uint64(uint64(v.Len()))
		// Each entry is hashed alone; the sorted entry hashes make the
		// map's hash independent of its iteration order.
		entries := make([]uint64, 0, v.Len())
		it := v.MapRange()
		for it.Next() {
			e := &Hash{h: offset, stack: h.stack}
			e.value(it.Key())
			e.value(it.Value())
			entries = append(entries, e.h)
		}
		slices.Sort(entries)
		for _, x := range entries {
			h.Uint64(x)
		}
	default: // func, chan, unsafe pointer: only whether it is nil
		if v.IsNil() {
			h.Uint64(0)
		} else {
			h.Uint64(1)
		}
	}
}

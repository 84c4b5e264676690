package replicated

import (
	"fmt"
	"slices"
	"sync"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/protocols"
)

// weakMethods are the methods a weak table runs, per type: the updates
// that commute and the reads.
var weakMethods = map[string]map[string]bool{
	dso.TypeAtomicLong: set("get", "longValue", "intValue", "addAndGet", "getAndAdd", "incrementAndGet", "decrementAndGet", "getAndIncrement", "getAndDecrement"),
	dso.TypeAtomicInt:  set("get", "longValue", "intValue", "addAndGet", "getAndAdd", "incrementAndGet", "decrementAndGet", "getAndIncrement", "getAndDecrement"),
	dso.TypeCounter:    set("increment", "decrement", "tally", "flush"),
	dso.TypeSet:        set("add", "addAll", "remove", "removeAll", "contains", "size", "members", "toList", "observe", "observeAll"),
	dso.TypeList:       set("add", "addAll", "removeAt", "removeAll", "observe", "observeAll", "size", "toList"),
	dso.TypeMap:        set("get", "getOrDefault", "containsKey", "keySet", "values", "entries", "toMap", "size", "merge", "mergeAll"),
}

func set(ms ...string) map[string]bool {
	out := make(map[string]bool, len(ms))
	for _, m := range ms {
		out[m] = true
	}
	return out
}

// WeakMethods returns the methods of typ that the weak level offers,
// sorted (none for a type it does not offer).
func WeakMethods(typ string) []string {
	var out []string
	for m := range weakMethods[typ] {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// checkWeak refuses a call of a method that the weak level does not
// offer; the weak Map refuses the merges it does not offer itself (a
// combiner other than sum, max and min, a sum of non-integers: weakmap.go).
func checkWeak(cl dso.Call) error {
	ms, ok := weakMethods[cl.Ref.Type]
	if !ok {
		return fmt.Errorf("%w: %s objects are not offered at the weak level (its updates must commute; types: AtomicLong, AtomicInt, Counter, Set, Map, List)", dso.ErrBadArgs, cl.Ref.Type)
	}
	if !ms[cl.Method] {
		return fmt.Errorf("%w: %s.%s is not offered at the weak level (its updates must commute; methods: %v)", dso.ErrBadArgs, cl.Ref, cl.Method, WeakMethods(cl.Ref.Type))
	}
	return nil
}

// EncodeDeclare returns the payload of a command, for the linearizable
// table of the object's group, that binds the name ref to level (Sequential
// or Weak) before its first call at that level. It is answered with true
// if the name is bound to level (now or before), and fails with
// dso.ErrBadArgs if a linearizable object of that name exists or the name
// is bound to another level. The command's Keys must hold Key(ref).
//
// Layout: kind 6, type, key, level (one byte).
func EncodeDeclare(ref dso.Ref, level degradable.Level) []byte {
	return append(appendString(appendString([]byte{kindDeclare}, ref.Type), ref.Key), byte(level))
}

// declare runs a declare command.
func (t *Table) declare(ref dso.Ref, level degradable.Level) (bool, error) {
	if !t.owns(ref) {
		return false, fmt.Errorf("%w: this replica group does not hold %s", dso.ErrWrongNode, ref)
	}
	if _, _, ok := t.reg.Lookup(ref.Type); !ok {
		return false, fmt.Errorf("%w: %q", dso.ErrUnknownType, ref.Type)
	}
	if _, ok := t.objs[ref]; ok {
		return false, levelMismatch(ref, degradable.Linearizable, level)
	}
	if have, ok := t.levels[ref]; ok && have != level {
		return false, levelMismatch(ref, have, level)
	}
	if t.levels == nil {
		t.levels = map[dso.Ref]degradable.Level{}
	}
	t.levels[ref] = level
	return true, nil
}

// levelMismatch is the error of a call at level want on an object created
// at level have.
func levelMismatch(ref dso.Ref, have, want degradable.Level) error {
	return fmt.Errorf("%w: %s was created at the %v level; it cannot be used at the %v level (use --level %v)", dso.ErrBadArgs, ref, have, want, have)
}

// LevelOf returns the level the name ref is bound to in this
// (linearizable) table: the level of its declaration, or Linearizable if
// the table holds a linearizable object of that name; false if neither.
func (t *Table) LevelOf(ref dso.Ref) (degradable.Level, bool) {
	if l, ok := t.levels[ref]; ok {
		return l, true
	}
	if _, ok := t.objs[ref]; ok {
		return degradable.Linearizable, true
	}
	return 0, false
}

// ReadOnlyCommands returns the protocols.Config.ReadOnly of tables of the
// types in reg (nil: the object library): a command is read-only if it is
// a call whose method reads its object without changing it
// (dso.ReadOnlyMethods), of the library's object or of the weak table's
// (the reads observe and observeAll). The non-linearizable strategies serve those
// locally. It is safe for concurrent use.
func ReadOnlyCommands(reg *dso.Registry) func(protocols.Command) bool {
	if reg == nil {
		reg = dso.NewRegistry()
	}
	var cache sync.Map // type + "\x00" + method -> bool
	return func(c protocols.Command) bool {
		r := wire.NewReader(c.Payload, "payload")
		if r.Byte() != kindCall {
			return false
		}
		typ := r.String()
		_ = r.String() // key
		method := r.String()
		if r.Err() != nil {
			return false
		}
		k := typ + "\x00" + method
		if v, ok := cache.Load(k); ok {
			return v.(bool)
		}
		obj, err := reg.Blank(typ)
		ro := err == nil && obj != nil && readOnly(obj, method)
		if c, ok := weakTypes[typ]; ok && !ro { // the weak objects' own reads
			w, _ := c(nil)
			ro = w != nil && readOnly(w, method)
		}
		cache.Store(k, ro)
		return ro
	}
}

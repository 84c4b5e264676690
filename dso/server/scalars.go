package server

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/blossom-dso/blossom/dso"
)

// scalarTable is the object table of one shard of a type whose objects are
// dso.Scalar (AtomicLong, AtomicInt, AtomicBoolean, Counter) on a server
// without storage: it keeps each object's int64 state, incarnation and key
// in 16 bytes of slot plus its key in a byte arena, with no pointer and no
// allocation per object, so a million counters cost tens of megabytes and
// nothing to the garbage collector's marking. Calls run on an object made
// again from the state for each call (see Server.callScalar). It is an
// open-addressing table (linear probing, backward-shift deletion) of any
// size (growth by half); a slot's home is a multiply-shift range reduction
// of the key's hash. Guarded by the shard's lock.
type scalarTable struct {
	slots []scalarSlot
	n     int    // slots in use
	arena []byte // each key as a uvarint length and its bytes
	dead  int    // arena bytes of removed keys
}

// scalarSlot is one object: off is 1 + the offset of its key in the arena
// (0 marks a free slot), inc the low 32 bits of its incarnation.
type scalarSlot struct {
	off uint32
	inc uint32
	v   int64
}

// maxArena bounds a shard's key arena, whose offsets are 32-bit.
const maxArena = math.MaxUint32 - 1

// home returns the home slot of hash h in a table of n slots.
func home(h uint32, n int) int {
	return int(uint64(h*2654435769) * uint64(n) >> 32)
}

// entry returns the key of slot s as bytes of the arena (not to be kept)
// and the arena bytes its entry takes (length and key).
func (t *scalarTable) entry(s scalarSlot) (key []byte, size int) {
	l, n := binary.Uvarint(t.arena[s.off-1:])
	start := int(s.off-1) + n
	return t.arena[start : start+int(l)], n + int(l)
}

// key returns the key of slot s as bytes of the arena (not to be kept).
func (t *scalarTable) key(s scalarSlot) []byte {
	k, _ := t.entry(s)
	return k
}

// find returns the slot of key (with hash h), or -1.
func (t *scalarTable) find(key string, h uint32) int {
	if t.n == 0 {
		return -1
	}
	for i := home(h, len(t.slots)); ; {
		s := t.slots[i]
		if s.off == 0 {
			return -1
		}
		if string(t.key(s)) == key {
			return i
		}
		if i++; i == len(t.slots) {
			i = 0
		}
	}
}

// insert adds key (absent, with hash h) with incarnation inc and state v.
// It fails only if the shard's arena would pass 4 GiB.
func (t *scalarTable) insert(key string, h uint32, inc uint32, v int64) error {
	if len(t.arena)+len(key)+binary.MaxVarintLen64 > maxArena {
		t.compact()
		if len(t.arena)+len(key)+binary.MaxVarintLen64 > maxArena {
			return fmt.Errorf("%w: the keys of this shard fill 4 GiB", dso.ErrLimit)
		}
	}
	if (t.n+1)*4 > len(t.slots)*3 {
		t.resize(max(8, len(t.slots)+len(t.slots)/2))
	}
	off := uint32(len(t.arena)) + 1
	t.arena = binary.AppendUvarint(t.arena, uint64(len(key)))
	t.arena = append(t.arena, key...)
	t.place(scalarSlot{off: off, inc: inc, v: v}, h)
	t.n++
	return nil
}

// place puts s in the first free slot from the home of h.
func (t *scalarTable) place(s scalarSlot, h uint32) {
	i := home(h, len(t.slots))
	for t.slots[i].off != 0 {
		if i++; i == len(t.slots) {
			i = 0
		}
	}
	t.slots[i] = s
}

func (t *scalarTable) resize(n int) {
	old := t.slots
	t.slots = make([]scalarSlot, n)
	for _, s := range old {
		if s.off != 0 {
			t.place(s, hashKey(t.key(s)))
		}
	}
}

// remove deletes slot i.
func (t *scalarTable) remove(i int) {
	_, size := t.entry(t.slots[i])
	t.dead += size
	t.n--
	n := len(t.slots)
	// Backward shift: move up each later slot of the run whose home is
	// not cyclically in (i, j].
	for j := i; ; {
		t.slots[i] = scalarSlot{}
		for {
			if j++; j == n {
				j = 0
			}
			s := t.slots[j]
			if s.off == 0 {
				if t.dead > 4096 && t.dead*2 > len(t.arena) {
					t.compact()
				}
				return
			}
			k := home(hashKey(t.key(s)), n)
			if i <= j {
				if i < k && k <= j {
					continue
				}
			} else if i < k || k <= j {
				continue
			}
			t.slots[i] = s
			i = j
			break
		}
	}
}

// compact copies the live keys into a new arena.
func (t *scalarTable) compact() {
	arena := make([]byte, 0, len(t.arena)-t.dead)
	for i, s := range t.slots {
		if s.off != 0 {
			k := t.key(s)
			t.slots[i].off = uint32(len(arena)) + 1
			arena = binary.AppendUvarint(arena, uint64(len(k)))
			arena = append(arena, k...)
		}
	}
	t.arena, t.dead = arena, 0
}

// each calls f on every key (a string made for f).
func (t *scalarTable) each(f func(key string)) {
	for _, s := range t.slots {
		if s.off != 0 {
			f(string(t.key(s)))
		}
	}
}

// callScalar is callOn for a type whose objects live in the shards' scalar
// tables: with the shard locked, it loads a pooled object of the type with
// the state of ref (or makes the object with the constructor arguments if
// it is absent), runs the call, and stores the state back. As in create, a
// read or a failed call on an absent object leaves nothing behind and
// reports incarnation 0.
func (s *Server) callScalar(t *typeTable, sh *shard, h uint32, ref dso.Ref, ctor dso.Constructor, method string, args, ctorArgs []any,
	rights Rights, incOut *uint64) (any, uint64, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i := sh.sc.find(ref.Key, h)
	var obj dso.Scalar
	var inc uint64
	if i >= 0 {
		obj = t.scalars.Get().(dso.Scalar)
		defer t.scalars.Put(obj)
		obj.LoadScalar(sh.sc.slots[i].v)
		inc = s.epoch | uint64(sh.sc.slots[i].inc)
	} else {
		if len(ref.Key) > s.cfg.MaxKey {
			return nil, 0, fmt.Errorf("%w: key of %d bytes; this server creates objects with keys up to %d bytes", dso.ErrLimit, len(ref.Key), s.cfg.MaxKey)
		}
		o, err := ctor(ctorArgs)
		if err != nil {
			return nil, 0, fmt.Errorf("create %s: %w", ref, err)
		}
		var ok bool
		if obj, ok = o.(dso.Scalar); !ok {
			return nil, 0, fmt.Errorf("%w: create %s: the constructor of a scalar type made a %T", dso.ErrInternal, ref, o)
		}
		inc = s.nextIncarnation()
	}
	if incOut != nil {
		*incOut = inc
	}
	if rights < RightAdmin {
		if err := allowed(rights, ref, obj, method); err != nil {
			return nil, 0, err
		}
	}
	v, err := s.invokeScalar(obj, dso.NewInvocation(ref, method, args, nil))
	switch {
	case i >= 0:
		sh.sc.slots[i].v = obj.ScalarState()
	case err != nil || readOnly(obj, method):
		inc = 0
	case s.cfg.MaxObjects > 0 && s.nobj.Load() >= int64(s.cfg.MaxObjects):
		return nil, 0, fmt.Errorf("%w: cannot create %s: this server holds %d objects, its limit", dso.ErrLimit, ref, s.cfg.MaxObjects)
	default:
		if err := sh.sc.insert(ref.Key, h, uint32(inc), obj.ScalarState()); err != nil {
			return nil, 0, err
		}
		s.nobj.Add(1)
	}
	return v, inc, err
}

// invokeScalar runs one method of a scalar object. A method that panics or
// parks (which a dso.Scalar must not do) fails with an internal error.
func (s *Server) invokeScalar(obj dso.Scalar, inv *dso.Invocation) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("dso: method panicked", "ref", inv.Ref.String(), "method", inv.Method, "panic", fmt.Sprint(p))
			v, err = nil, fmt.Errorf("%w: %s.%s panicked: %v", dso.ErrInternal, inv.Ref, inv.Method, p)
		}
	}()
	v, err = obj.Invoke(inv)
	if inv.Parked() != nil {
		return nil, fmt.Errorf("%w: %s.%s parked, which an object of a scalar type must not do", dso.ErrInternal, inv.Ref, inv.Method)
	}
	return v, err
}

package server

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/blossom-dso/blossom/dso"
)

// scalarTable is the object table of one shard of a type whose objects are
// dso.Scalar (AtomicLong, AtomicInt, AtomicBoolean, Counter) on a server
// without storage. Each object is one record of a byte arena — its key
// (uvarint length and bytes), then the low 32 bits of its incarnation and
// its int64 state, little-endian — and an index of 32-bit arena offsets
// finds the records: no pointer and no allocation per object, about 20
// bytes of record and 6 of index for a short key, and nothing for the
// garbage collector to mark. Calls run on an object made again from the
// state for each call (see Server.callScalar). The index is an
// open-addressing table (linear probing, backward-shift deletion) of any
// size, made 1.8 times the records when they pass four fifths of it (so it
// is 55 to 80% full); a slot's home is a
// multiply-shift range reduction of the key's hash. The arena grows by a
// quarter when full, and removed records are reclaimed by compaction once
// they are half of it. Guarded by the shard's lock.
type scalarTable struct {
	index []uint32 // 1 + the arena offset of a record; 0: free
	n     int      // records in use
	arena []byte
	dead  int // arena bytes of removed records
}

// Record layout after the key: incarnation (4 bytes), state (8 bytes).
const scalarTail = 12

// maxArena bounds a shard's arena, whose offsets are 32-bit.
const maxArena = math.MaxUint32 - 1

// home returns the home slot of hash h in a table of n slots.
func home(h uint32, n int) int {
	return int(uint64(h*2654435769) * uint64(n) >> 32)
}

// record returns the key of the record at index slot i (as bytes of the
// arena, not to be kept), the offset of its tail and its size in bytes.
func (t *scalarTable) record(i int) (key []byte, tail, size int) {
	off := int(t.index[i] - 1)
	l, n := binary.Uvarint(t.arena[off:])
	start := off + n
	tail = start + int(l)
	return t.arena[start:tail], tail, tail + scalarTail - off
}

// key returns the key of the record at slot i (not to be kept).
func (t *scalarTable) key(i int) []byte {
	k, _, _ := t.record(i)
	return k
}

// tail returns the arena bytes of the incarnation and state of slot i.
func (t *scalarTable) tail(i int) []byte {
	_, tail, _ := t.record(i)
	return t.arena[tail : tail+scalarTail]
}

// value returns the state of the object at slot i.
func (t *scalarTable) value(i int) int64 {
	return int64(binary.LittleEndian.Uint64(t.tail(i)[4:]))
}

// setValue sets the state of the object at slot i.
func (t *scalarTable) setValue(i int, v int64) {
	binary.LittleEndian.PutUint64(t.tail(i)[4:], uint64(v))
}

// inc returns the low 32 bits of the incarnation of the object at slot i.
func (t *scalarTable) inc(i int) uint32 {
	return binary.LittleEndian.Uint32(t.tail(i))
}

// find returns the index slot of key (with hash h), or -1.
func (t *scalarTable) find(key string, h uint32) int {
	if t.n == 0 {
		return -1
	}
	for i := home(h, len(t.index)); ; {
		off := t.index[i]
		if off == 0 {
			return -1
		}
		// Compare the length first: one byte for keys under 128 bytes.
		if l, n := binary.Uvarint(t.arena[off-1:]); l == uint64(len(key)) &&
			string(t.arena[int(off-1)+n:int(off-1)+n+len(key)]) == key {
			return i
		}
		if i++; i == len(t.index) {
			i = 0
		}
	}
}

// insert adds key (absent, with hash h) with incarnation inc and state v.
// It fails only if the shard's arena would pass 4 GiB.
func (t *scalarTable) insert(key string, h uint32, inc uint32, v int64) error {
	size := binary.MaxVarintLen64 + len(key) + scalarTail
	if len(t.arena)+size > maxArena {
		t.compact(0)
		if len(t.arena)+size > maxArena {
			return fmt.Errorf("%w: the keys of this shard fill 4 GiB", dso.ErrLimit)
		}
	}
	if (t.n+1)*5 > len(t.index)*4 {
		t.resize(max(8, (t.n+1)*9/5))
	}
	if len(t.arena)+size > cap(t.arena) {
		t.compact(size)
	}
	off := uint32(len(t.arena)) + 1
	t.arena = binary.AppendUvarint(t.arena, uint64(len(key)))
	t.arena = append(t.arena, key...)
	t.arena = binary.LittleEndian.AppendUint32(t.arena, inc)
	t.arena = binary.LittleEndian.AppendUint64(t.arena, uint64(v))
	t.place(off, h)
	t.n++
	return nil
}

// place puts arena offset off (plus 1) in the first free slot from the
// home of h.
func (t *scalarTable) place(off uint32, h uint32) {
	i := home(h, len(t.index))
	for t.index[i] != 0 {
		if i++; i == len(t.index) {
			i = 0
		}
	}
	t.index[i] = off
}

func (t *scalarTable) resize(n int) {
	old := t.index
	t.index = make([]uint32, n)
	for _, off := range old {
		if off != 0 {
			l, m := binary.Uvarint(t.arena[off-1:])
			start := int(off-1) + m
			t.place(off, hashKey(t.arena[start:start+int(l)]))
		}
	}
}

// remove deletes the object at slot i.
func (t *scalarTable) remove(i int) {
	_, _, size := t.record(i)
	t.dead += size
	t.n--
	n := len(t.index)
	// Backward shift: move up each later slot of the run whose home is
	// not cyclically in (i, j].
	for j := i; ; {
		t.index[i] = 0
		for {
			if j++; j == n {
				j = 0
			}
			if t.index[j] == 0 {
				if t.dead > 4096 && t.dead*2 > len(t.arena) {
					t.compact(0)
				}
				return
			}
			k := home(hashKey(t.key(j)), n)
			if i <= j {
				if i < k && k <= j {
					continue
				}
			} else if i < k || k <= j {
				continue
			}
			t.index[i] = t.index[j]
			i = j
			break
		}
	}
}

// compact copies the live records into a new arena with room for at
// least extra more bytes and a quarter of the live ones (so that appends
// copy the arena a logarithmic number of times), and drops the removed
// records.
func (t *scalarTable) compact(extra int) {
	live := len(t.arena) - t.dead
	arena := make([]byte, 0, min(maxArena, max(256, live+live/4+extra)))
	if t.dead == 0 {
		t.arena = append(arena, t.arena...)
		return
	}
	for i, off := range t.index {
		if off != 0 {
			_, _, size := t.record(i)
			t.index[i] = uint32(len(arena)) + 1
			arena = append(arena, t.arena[off-1:int(off-1)+size]...)
		}
	}
	t.arena, t.dead = arena, 0
}

// each calls f on every key (a string made for f).
func (t *scalarTable) each(f func(key string)) {
	for i, off := range t.index {
		if off != 0 {
			f(string(t.key(i)))
		}
	}
}

// scalarCall is what a call on a scalar object runs on: an object of the
// type, loaded with the state of the one called, and the invocation. A
// type table's pool keeps them between calls (a dso.Scalar's method keeps
// neither).
type scalarCall struct {
	obj dso.Scalar
	inv dso.Invocation
}

// newScalarPool returns a pool of scalarCalls on objects made by ctor
// (with no arguments), which must be dso.Scalars.
func newScalarPool(ctor dso.Constructor) *sync.Pool {
	return &sync.Pool{New: func() any {
		o, _ := ctor(nil)
		return &scalarCall{obj: o.(dso.Scalar)}
	}}
}

// release drops what the call referred to and returns sc to pool.
func (sc *scalarCall) release(pool *sync.Pool) {
	sc.inv.Reset(dso.Ref{}, "", nil, nil)
	pool.Put(sc)
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
	sc := t.scalars.Get().(*scalarCall)
	defer sc.release(t.scalars)
	var obj dso.Scalar
	var inc uint64
	if i >= 0 {
		obj = sc.obj
		obj.LoadScalar(sh.sc.value(i))
		inc = s.epoch | uint64(sh.sc.inc(i))
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
	sc.inv.Reset(ref, method, args, nil)
	v, err := s.invokeScalar(obj, &sc.inv)
	switch {
	case i >= 0:
		sh.sc.setValue(i, obj.ScalarState())
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

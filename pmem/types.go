package pmem

import (
	"bytes"
	"fmt"
)

// ---------------------------------------------------------------- bytes

// NewBytes allocates a persistent byte string holding a copy of b and returns
// its pointer. Layout: [len u64][bytes].
func NewBytes(tx *Tx, b []byte) (Ptr, error) {
	p, err := tx.Alloc(8+len(b), 0)
	if err != nil {
		return 0, err
	}
	tx.SetU64(p, uint64(len(b)))
	tx.Write(p+8, b)
	return p, nil
}

// NewString allocates a persistent string; it is NewBytes of s.
func NewString(tx *Tx, s string) (Ptr, error) { return NewBytes(tx, []byte(s)) }

// BytesOf returns the contents of the persistent byte string at p. The
// result may alias the heap: it is valid until the block ends and must not
// be modified.
func BytesOf(tx *Tx, p Ptr) []byte {
	n := tx.U64(p)
	if n > uint64(tx.PayloadSize(p))-8 {
		panic(tx.h.corrupt("byte string at %d claims %d bytes", p, n))
	}
	return tx.Bytes(p+8, int(n))
}

// StringOf returns the persistent string at p.
func StringOf(tx *Tx, p Ptr) string { return string(BytesOf(tx, p)) }

// SetBytes overwrites the persistent byte string at p with b if it fits in
// the block, returning p; otherwise it allocates a new string, frees the old
// one and returns the new pointer.
func SetBytes(tx *Tx, p Ptr, b []byte) (Ptr, error) {
	if 8+len(b) <= tx.PayloadSize(p) {
		tx.SetU64(p, uint64(len(b)))
		tx.Write(p+8, b)
		return p, nil
	}
	q, err := NewBytes(tx, b)
	if err != nil {
		return 0, err
	}
	tx.Free(p)
	return q, nil
}

// ---------------------------------------------------------------- counter

// Counter is a persistent int64 counter: a one-word block.
type Counter struct{ P Ptr }

// NewCounter allocates a counter with value 0.
func NewCounter(tx *Tx) (Counter, error) {
	p, err := tx.Alloc(8, 0)
	if err != nil {
		return Counter{}, err
	}
	tx.SetU64(p, 0)
	return Counter{p}, nil
}

// Get returns the counter's value.
func (c Counter) Get(tx *Tx) int64 { return int64(tx.U64(c.P)) }

// Add adds d to the counter and returns the new value.
func (c Counter) Add(tx *Tx, d int64) int64 {
	v := int64(tx.U64(c.P)) + d
	tx.SetU64(c.P, uint64(v))
	return v
}

// ---------------------------------------------------------------- array

// Array is a persistent growable array of 64-bit words. A traced array holds
// pointers (0 or allocated blocks), which keep their blocks alive across
// recovery; an untraced array holds plain values.
//
// Layout: header block [data Ptr][len][cap][traced]; data block of cap words
// (all pointers if traced).
type Array struct{ P Ptr }

const (
	arrData = 0
	arrLen  = 8
	arrCap  = 16
	arrTr   = 24
)

// NewArray allocates an empty array with room for capHint elements.
func NewArray(tx *Tx, traced bool, capHint int) (Array, error) {
	capHint = max(capHint, 4)
	hp, err := tx.Alloc(32, 1)
	if err != nil {
		return Array{}, err
	}
	dp, err := allocWords(tx, capHint, traced)
	if err != nil {
		return Array{}, err
	}
	tx.SetPtr(hp+arrData, dp)
	tx.SetU64(hp+arrLen, 0)
	tx.SetU64(hp+arrCap, uint64(capHint))
	tx.SetU64(hp+arrTr, b2u(traced))
	return Array{hp}, nil
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func allocWords(tx *Tx, n int, traced bool) (Ptr, error) {
	np := 0
	if traced {
		np = n
	}
	return tx.Alloc(8*n, np)
}

// Len returns the number of elements.
func (a Array) Len(tx *Tx) int { return int(tx.U64(a.P + arrLen)) }

func (a Array) slot(tx *Tx, i int) Ptr {
	n := tx.U64(a.P + arrLen)
	if i < 0 || uint64(i) >= n {
		panic(fmt.Sprintf("pmem: Array index %d out of range [0,%d)", i, n))
	}
	return tx.Ptr(a.P+arrData) + Ptr(8*i)
}

// Get returns element i; it panics if i is out of range.
func (a Array) Get(tx *Tx, i int) uint64 { return tx.U64(a.slot(tx, i)) }

// Set replaces element i.
func (a Array) Set(tx *Tx, i int, v uint64) {
	if v != 0 && tx.U64(a.P+arrTr) != 0 {
		tx.blockInfo(Ptr(v))
	}
	tx.SetU64(a.slot(tx, i), v)
}

// Append adds v at the end, doubling the capacity when full (the elements
// move to a new block; the old one is freed).
func (a Array) Append(tx *Tx, v uint64) error {
	traced := tx.U64(a.P+arrTr) != 0
	if v != 0 && traced {
		tx.blockInfo(Ptr(v))
	}
	n, c := tx.U64(a.P+arrLen), tx.U64(a.P+arrCap)
	data := tx.Ptr(a.P + arrData)
	if n == c {
		nd, err := allocWords(tx, int(2*c), traced)
		if err != nil {
			return err
		}
		buf := make([]byte, 8*n)
		tx.Read(data, buf)
		tx.Write(nd, buf)
		tx.Free(data)
		tx.SetPtr(a.P+arrData, nd)
		tx.SetU64(a.P+arrCap, 2*c)
		data = nd
	}
	tx.SetU64(data+Ptr(8*n), v)
	tx.SetU64(a.P+arrLen, n+1)
	return nil
}

// Pop removes and returns the last element; it panics on an empty array.
// Popping from a traced array does not free the element's block.
func (a Array) Pop(tx *Tx) uint64 {
	n := tx.U64(a.P + arrLen)
	if n == 0 {
		panic("pmem: Pop of an empty Array")
	}
	s := tx.Ptr(a.P+arrData) + Ptr(8*(n-1))
	v := tx.U64(s)
	tx.SetU64(s, 0)
	tx.SetU64(a.P+arrLen, n-1)
	return v
}

// Range calls fn for each element in index order until fn returns false.
func (a Array) Range(tx *Tx, fn func(i int, v uint64) bool) {
	n := int(tx.U64(a.P + arrLen))
	data := tx.Ptr(a.P + arrData)
	for i := 0; i < n; i++ {
		if !fn(i, tx.U64(data+Ptr(8*i))) {
			return
		}
	}
}

// Free frees the array's own blocks (not the blocks its elements point to).
func (a Array) Free(tx *Tx) {
	tx.Free(tx.Ptr(a.P + arrData))
	tx.Free(a.P)
}

// ---------------------------------------------------------------- hashing

// hashKey is FNV-1a 64, finished with a mixer; it is part of the heap
// format (hash maps and skip-list levels depend on it).
func hashKey(k []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range k {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

// ---------------------------------------------------------------- hash map

// HashMap is a persistent hash map from byte-string keys to 64-bit values (a
// pointer each if the map is traced). It grows by linear hashing: one bucket
// splits per insertion beyond the load factor, so no block ever rehashes the
// whole map; the bucket directory doubles into a fresh block (not logged).
//
// Layout: header [dir Ptr][count][level][split][traced]; directory of
// 8<<(level+1) bucket heads; entry [next][value][hash][klen][key].
type HashMap struct{ P Ptr }

const (
	hmDir, hmCount, hmLevel, hmSplit, hmTr    = 0, 8, 16, 24, 32
	hmBase                                    = 8
	hmLoad                                    = 2
	entNext, entVal, entHash, entKlen, entKey = 0, 8, 16, 24, 32
)

// NewHashMap allocates an empty hash map.
func NewHashMap(tx *Tx, traced bool) (HashMap, error) {
	hp, err := tx.Alloc(40, 1)
	if err != nil {
		return HashMap{}, err
	}
	dir, err := tx.Alloc(8*hmBase*2, hmBase*2)
	if err != nil {
		return HashMap{}, err
	}
	tx.SetPtr(hp+hmDir, dir)
	tx.SetU64(hp+hmCount, 0)
	tx.SetU64(hp+hmLevel, 0)
	tx.SetU64(hp+hmSplit, 0)
	tx.SetU64(hp+hmTr, b2u(traced))
	return HashMap{hp}, nil
}

// RootHashMap returns the hash map under the root name, first making an
// empty one (traced or not) and setting the root to it if the root is not
// set. It does not check that an existing root is a hash map of that kind.
func RootHashMap(tx *Tx, name string, traced bool) (HashMap, error) {
	if p := tx.Root(name); p != 0 {
		return HashMap{p}, nil
	}
	m, err := NewHashMap(tx, traced)
	if err != nil {
		return HashMap{}, err
	}
	return m, tx.SetRoot(name, m.P)
}

// Len returns the number of entries.
func (m HashMap) Len(tx *Tx) int { return int(tx.U64(m.P + hmCount)) }

func (m HashMap) bucket(tx *Tx, h uint64) Ptr {
	lvl, split := tx.U64(m.P+hmLevel), tx.U64(m.P+hmSplit)
	if lvl > 40 {
		panic(tx.h.corrupt("hash map %d has level %d", m.P, lvl))
	}
	i := h & (hmBase<<lvl - 1)
	if i < split {
		i = h & (hmBase<<(lvl+1) - 1)
	}
	return tx.Ptr(m.P+hmDir) + Ptr(8*i)
}

func entryKey(tx *Tx, e Ptr) []byte {
	n := tx.U64(e + entKlen)
	if n > uint64(tx.PayloadSize(e))-entKey {
		panic(tx.h.corrupt("hash map entry %d claims a %d-byte key", e, n))
	}
	return tx.Bytes(e+entKey, int(n))
}

// find returns the link that points to key's entry (or the bucket's last
// link) and the entry (0 if absent).
func (m HashMap) find(tx *Tx, key []byte, h uint64) (link, e Ptr) {
	link = m.bucket(tx, h)
	for e = tx.Ptr(link); e != 0; link, e = e+entNext, tx.Ptr(e+entNext) {
		if tx.U64(e+entHash) == h && bytes.Equal(entryKey(tx, e), key) {
			return link, e
		}
	}
	return link, 0
}

// Get returns the value stored under key.
func (m HashMap) Get(tx *Tx, key []byte) (uint64, bool) {
	if _, e := m.find(tx, key, hashKey(key)); e != 0 {
		return tx.U64(e + entVal), true
	}
	return 0, false
}

// Put stores v under key and returns the previous value, if any. In a traced
// map the previous pointer's block is not freed.
func (m HashMap) Put(tx *Tx, key []byte, v uint64) (old uint64, existed bool, err error) {
	traced := tx.U64(m.P+hmTr) != 0
	if traced && v != 0 {
		tx.blockInfo(Ptr(v))
	}
	h := hashKey(key)
	link, e := m.find(tx, key, h)
	if e != 0 {
		old = tx.U64(e + entVal)
		tx.SetU64(e+entVal, v)
		return old, true, nil
	}
	e, err = tx.Alloc(entKey+len(key), 1+int(b2u(traced)))
	if err != nil {
		return 0, false, err
	}
	var hdr [entKey]byte
	putU64(hdr[entVal:], v)
	putU64(hdr[entHash:], h)
	putU64(hdr[entKlen:], uint64(len(key)))
	tx.Write(e, hdr[:])
	tx.Write(e+entKey, key)
	tx.SetPtr(link, e)
	n := tx.U64(m.P+hmCount) + 1
	tx.SetU64(m.P+hmCount, n)
	lvl, split := tx.U64(m.P+hmLevel), tx.U64(m.P+hmSplit)
	if n > hmLoad*(hmBase<<lvl+split) {
		if err := m.split(tx, lvl, split); err != nil {
			return 0, false, err
		}
	}
	return 0, false, nil
}

// split splits bucket `split` into itself and split + 8<<lvl.
func (m HashMap) split(tx *Tx, lvl, split uint64) error {
	dir := tx.Ptr(m.P + hmDir)
	lo, hi := dir+Ptr(8*split), dir+Ptr(8*(split+hmBase<<lvl))
	mask := uint64(hmBase<<(lvl+1) - 1)
	e := tx.Ptr(lo)
	tx.SetPtr(lo, 0)
	tx.SetPtr(hi, 0)
	loTail, hiTail := lo, hi
	for e != 0 {
		next := tx.Ptr(e + entNext)
		if tx.U64(e+entHash)&mask == split {
			tx.SetPtr(loTail, e)
			loTail = e + entNext
		} else {
			tx.SetPtr(hiTail, e)
			hiTail = e + entNext
		}
		e = next
	}
	tx.SetPtr(loTail, 0)
	tx.SetPtr(hiTail, 0)
	split++
	if split == hmBase<<lvl {
		lvl++
		split = 0
		// The directory must hold 8<<(lvl+1) buckets from now on.
		n := hmBase << (lvl + 1)
		nd, err := tx.Alloc(8*n, n)
		if err != nil {
			return err
		}
		buf := make([]byte, 8*(hmBase<<lvl))
		tx.Read(dir, buf)
		tx.Write(nd, buf)
		tx.Free(dir)
		tx.SetPtr(m.P+hmDir, nd)
		tx.SetU64(m.P+hmLevel, lvl)
	}
	tx.SetU64(m.P+hmSplit, split)
	return nil
}

// Delete removes key and returns its value. In a traced map the value's block
// is not freed.
func (m HashMap) Delete(tx *Tx, key []byte) (uint64, bool) {
	link, e := m.find(tx, key, hashKey(key))
	if e == 0 {
		return 0, false
	}
	v := tx.U64(e + entVal)
	tx.SetPtr(link, tx.Ptr(e+entNext))
	tx.SetU64(m.P+hmCount, tx.U64(m.P+hmCount)-1)
	tx.Free(e)
	return v, true
}

// Range calls fn for every entry, in bucket order, until fn returns false.
// fn must not modify the map.
func (m HashMap) Range(tx *Tx, fn func(key []byte, v uint64) bool) {
	lvl, split := tx.U64(m.P+hmLevel), tx.U64(m.P+hmSplit)
	dir := tx.Ptr(m.P + hmDir)
	for i := uint64(0); i < hmBase<<lvl+split; i++ {
		for e := tx.Ptr(dir + Ptr(8*i)); e != 0; e = tx.Ptr(e + entNext) {
			if !fn(entryKey(tx, e), tx.U64(e+entVal)) {
				return
			}
		}
	}
}

// Free frees the map's own blocks (not the blocks its values point to).
func (m HashMap) Free(tx *Tx) {
	var es []Ptr
	lvl, split := tx.U64(m.P+hmLevel), tx.U64(m.P+hmSplit)
	dir := tx.Ptr(m.P + hmDir)
	for i := uint64(0); i < hmBase<<lvl+split; i++ {
		for e := tx.Ptr(dir + Ptr(8*i)); e != 0; e = tx.Ptr(e + entNext) {
			es = append(es, e)
		}
	}
	for _, e := range es {
		tx.Free(e)
	}
	tx.Free(dir)
	tx.Free(m.P)
}

func putU64(b []byte, v uint64) {
	_ = b[7]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	b[4], b[5], b[6], b[7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
}

// ---------------------------------------------------------------- sorted map

// SortedMap is a persistent sorted map from byte-string keys (ordered by
// bytes.Compare) to 64-bit values (pointers if traced): a skip list whose
// node heights derive from the key's hash, so the structure is a function of
// the key set.
//
// Layout: header [head Ptr][count][level][traced]; head node of maxLevel
// links; node [next_0 .. next_{h-1}][value][klen][key], whose block's nptr is
// h (+1 when traced, covering the value).
type SortedMap struct{ P Ptr }

const (
	smHead, smCount, smLevel, smTr = 0, 8, 16, 24
	smMaxLevel                     = 24
)

// NewSortedMap allocates an empty sorted map.
func NewSortedMap(tx *Tx, traced bool) (SortedMap, error) {
	hp, err := tx.Alloc(32, 1)
	if err != nil {
		return SortedMap{}, err
	}
	head, err := tx.Alloc(8*smMaxLevel, smMaxLevel)
	if err != nil {
		return SortedMap{}, err
	}
	tx.SetPtr(hp+smHead, head)
	tx.SetU64(hp+smCount, 0)
	tx.SetU64(hp+smLevel, 1)
	tx.SetU64(hp+smTr, b2u(traced))
	return SortedMap{hp}, nil
}

// Len returns the number of entries.
func (m SortedMap) Len(tx *Tx) int { return int(tx.U64(m.P + smCount)) }

func nodeLevel(key []byte) int {
	h := hashKey(key)
	l := 1
	for l < smMaxLevel && h&3 == 0 {
		l++
		h >>= 2
	}
	return l
}

// node returns the number of links of node x and its key, validating x's
// block header once (one word read): the node's height is its block's
// pointer count, and the key must fit in the block.
func (m SortedMap) node(tx *Tx, x Ptr, traced uint64) (uint64, []byte) {
	c, np := tx.blockInfo(x)
	ht := uint64(np) - traced
	if uint64(np) < 1+traced || ht > smMaxLevel {
		panic(tx.h.corrupt("skip-list node %d has %d pointers", x, np))
	}
	kl := x + Ptr(8*(ht+1))
	n := tx.U64(kl)
	if n > classSize[c]-blockHdr-8*(ht+2) {
		panic(tx.h.corrupt("skip-list node %d claims a %d-byte key", x, n))
	}
	return ht, tx.Bytes(kl+8, int(n))
}

// seek fills preds with, per level, the last node whose key is < key, and
// returns the node at level 0 after preds[0] (the first node >= key).
func (m SortedMap) seek(tx *Tx, key []byte, preds *[smMaxLevel]Ptr) Ptr {
	traced := tx.U64(m.P + smTr)
	lvl := int(tx.U64(m.P + smLevel))
	if lvl < 1 || lvl > smMaxLevel {
		panic(tx.h.corrupt("skip list %d has level %d", m.P, lvl))
	}
	x := tx.Ptr(m.P + smHead)
	for i := smMaxLevel - 1; i >= lvl; i-- {
		preds[i] = x
	}
	var next, stop Ptr // stop: a node already found to be >= key
	for i := lvl - 1; i >= 0; i-- {
		for {
			next = tx.Ptr(x + Ptr(8*i))
			if next == 0 || next == stop {
				break
			}
			if _, k := m.node(tx, next, traced); bytes.Compare(k, key) >= 0 {
				stop = next
				break
			}
			x = next
		}
		preds[i] = x
	}
	return next
}

// Get returns the value stored under key.
func (m SortedMap) Get(tx *Tx, key []byte) (uint64, bool) {
	var preds [smMaxLevel]Ptr
	x := m.seek(tx, key, &preds)
	if x == 0 {
		return 0, false
	}
	ht, k := m.node(tx, x, tx.U64(m.P+smTr))
	if !bytes.Equal(k, key) {
		return 0, false
	}
	return tx.U64(x + Ptr(8*ht)), true
}

// Put stores v under key and returns the previous value, if any. In a traced
// map the previous pointer's block is not freed.
func (m SortedMap) Put(tx *Tx, key []byte, v uint64) (old uint64, existed bool, err error) {
	traced := tx.U64(m.P + smTr)
	if traced != 0 && v != 0 {
		tx.blockInfo(Ptr(v))
	}
	var preds [smMaxLevel]Ptr
	x := m.seek(tx, key, &preds)
	if x != 0 {
		if ht, k := m.node(tx, x, traced); bytes.Equal(k, key) {
			old = tx.U64(x + Ptr(8*ht))
			tx.SetU64(x+Ptr(8*ht), v)
			return old, true, nil
		}
	}
	ht := nodeLevel(key)
	n, err := tx.Alloc(8*(ht+2)+len(key), ht+int(traced))
	if err != nil {
		return 0, false, err
	}
	buf := make([]byte, 8*(ht+2)+len(key))
	for i := 0; i < ht; i++ {
		putU64(buf[8*i:], uint64(tx.Ptr(preds[i]+Ptr(8*i))))
	}
	putU64(buf[8*ht:], v)
	putU64(buf[8*(ht+1):], uint64(len(key)))
	copy(buf[8*(ht+2):], key)
	tx.Write(n, buf)
	for i := 0; i < ht; i++ {
		tx.SetPtr(preds[i]+Ptr(8*i), n)
	}
	if uint64(ht) > tx.U64(m.P+smLevel) {
		tx.SetU64(m.P+smLevel, uint64(ht))
	}
	tx.SetU64(m.P+smCount, tx.U64(m.P+smCount)+1)
	return 0, false, nil
}

// Delete removes key and returns its value. In a traced map the value's block
// is not freed.
func (m SortedMap) Delete(tx *Tx, key []byte) (uint64, bool) {
	traced := tx.U64(m.P + smTr)
	var preds [smMaxLevel]Ptr
	x := m.seek(tx, key, &preds)
	if x == 0 {
		return 0, false
	}
	ht, k := m.node(tx, x, traced)
	if !bytes.Equal(k, key) {
		return 0, false
	}
	v := tx.U64(x + Ptr(8*ht))
	for i := uint64(0); i < ht; i++ {
		if tx.Ptr(preds[i]+Ptr(8*i)) == x {
			tx.SetPtr(preds[i]+Ptr(8*i), tx.Ptr(x+Ptr(8*i)))
		}
	}
	tx.SetU64(m.P+smCount, tx.U64(m.P+smCount)-1)
	tx.Free(x)
	return v, true
}

// Ascend calls fn for each entry with key >= from, in key order, until fn
// returns false. A nil from starts at the smallest key. fn must not modify
// the map.
func (m SortedMap) Ascend(tx *Tx, from []byte, fn func(key []byte, v uint64) bool) {
	traced := tx.U64(m.P + smTr)
	var preds [smMaxLevel]Ptr
	x := m.seek(tx, from, &preds)
	for x != 0 {
		ht, k := m.node(tx, x, traced)
		if !fn(k, tx.U64(x+Ptr(8*ht))) {
			return
		}
		x = tx.Ptr(x)
	}
}

// Free frees the map's own blocks (not the blocks its values point to).
func (m SortedMap) Free(tx *Tx) {
	head := tx.Ptr(m.P + smHead)
	for x := tx.Ptr(head); x != 0; {
		next := tx.Ptr(x)
		tx.Free(x)
		x = next
	}
	tx.Free(head)
	tx.Free(m.P)
}

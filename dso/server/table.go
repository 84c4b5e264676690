package server

// entryTable is the object table of one shard: an open-addressing hash
// table (linear probing, backward-shift deletion) of pointers to entries,
// each entry holding its own key. A slot costs 8 bytes, against 24 plus
// control bytes for a map[string]*entry, whose doubling also leaves it
// half empty on average; with a million objects this saves about a third
// of the server's heap. Guarded by the shard's lock.
type entryTable struct {
	slots []*entry // nil, or a power of two long
	n     int
	shift uint8 // 32 - log2(len(slots))
}

// slot returns the home slot of a key hash: Fibonacci hashing of the whole
// FNV hash (whose low bits chose the shard).
func (t *entryTable) slot(h uint32) int { return int((h * 2654435769) >> t.shift) }

// get returns the entry of key (with hash h), or nil.
func (t *entryTable) get(key string, h uint32) *entry {
	if t.n == 0 {
		return nil
	}
	mask := len(t.slots) - 1
	for i := t.slot(h); ; i = (i + 1) & mask {
		e := t.slots[i]
		if e == nil || e.key == key {
			return e
		}
	}
}

// put adds e, whose key (with hash h) is absent.
func (t *entryTable) put(e *entry, h uint32) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	mask := len(t.slots) - 1
	i := t.slot(h)
	for t.slots[i] != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = e
	t.n++
}

func (t *entryTable) grow() {
	old := t.slots
	size := max(8, 2*len(old))
	t.slots = make([]*entry, size)
	t.shift = 32
	for s := size; s > 1; s >>= 1 {
		t.shift--
	}
	t.n = 0
	for _, e := range old {
		if e != nil {
			t.put(e, hashKey(e.key))
		}
	}
}

// remove deletes and returns the entry of key (with hash h), or nil.
func (t *entryTable) remove(key string, h uint32) *entry {
	if t.n == 0 {
		return nil
	}
	mask := len(t.slots) - 1
	i := t.slot(h)
	for ; t.slots[i] == nil || t.slots[i].key != key; i = (i + 1) & mask {
		if t.slots[i] == nil {
			return nil
		}
	}
	e := t.slots[i]
	t.n--
	// Backward shift: move up each later entry of the run whose home slot
	// is not cyclically in (i, j].
	for j := i; ; {
		t.slots[i] = nil
		for {
			j = (j + 1) & mask
			f := t.slots[j]
			if f == nil {
				return e
			}
			k := t.slot(hashKey(f.key))
			if i <= j {
				if i < k && k <= j {
					continue
				}
			} else if i < k || k <= j {
				continue
			}
			t.slots[i] = f
			i = j
			break
		}
	}
}

// each calls f on every entry.
func (t *entryTable) each(f func(*entry)) {
	for _, e := range t.slots {
		if e != nil {
			f(e)
		}
	}
}

package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/blossom-dso/blossom/pmem"
)

// Pmem keeps records as persistent objects in a pmem heap. Roots:
// "kv.index.v2", a traced hash map from key to record; "kv.order.v2", an
// untraced sorted map from key to record (for scans). A record is one block
// (see the record layout below), so reading or scanning a record touches
// contiguous memory. Every write is one atomic block, durable when the
// method returns.
type Pmem struct {
	mu    sync.Mutex
	h     *pmem.Heap
	index pmem.HashMap
	order pmem.SortedMap
	views [][]byte    // Scan's reusable field views
	batch []scanEntry // Scan's reusable entries
}

// Record layout, one block without pointers:
//
//	[0:8)            number of fields n
//	[8:8+8n)         per field: offset of its slot in the payload (u32),
//	                 length (u32)
//	[8+8n:)          the slots, back to back; a slot is as long as the field
//	                 it was created with
//
// Update overwrites a field in place (through the redo log) when the new
// value fits in its slot, and otherwise writes a new record into a fresh
// block and swaps it into both maps.
const recDir = 8

// OpenPmem opens the heap file at path, creating it with size bytes if it
// does not exist, in FlushAuto mode.
func OpenPmem(path string, size int64) (*Pmem, error) {
	return OpenPmemWith(path, size, nil)
}

// OpenPmemWith is OpenPmem with heap options (opts.FlushMode applies to an
// existing heap, every option to a new one).
func OpenPmemWith(path string, size int64, opts *pmem.Options) (*Pmem, error) {
	var h *pmem.Heap
	var err error
	if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) {
		h, err = pmem.Create(path, size, opts)
	} else {
		h, err = pmem.OpenWith(path, opts)
	}
	if err != nil {
		return nil, err
	}
	s, err := NewPmemOnHeap(h)
	if err != nil {
		h.Close()
		return nil, err
	}
	return s, nil
}

// NewPmemOnHeap makes a store on an open heap, creating its roots if
// missing. Close closes the heap.
func NewPmemOnHeap(h *pmem.Heap) (*Pmem, error) {
	s := &Pmem{h: h}
	err := h.Atomic(func(tx *pmem.Tx) error {
		if tx.Root("kv.index") != 0 {
			return fmt.Errorf("kv: heap %s holds a store of the older layout (one block per field); recreate it", h.Name())
		}
		if p := tx.Root("kv.index.v2"); p != 0 {
			s.index, s.order = pmem.HashMap{P: p}, pmem.SortedMap{P: tx.Root("kv.order.v2")}
			if s.order.P == 0 {
				return fmt.Errorf("kv: heap %s has kv.index.v2 but no kv.order.v2", h.Name())
			}
			return nil
		}
		var err error
		if s.index, err = pmem.NewHashMap(tx, true); err != nil {
			return err
		}
		if s.order, err = pmem.NewSortedMap(tx, false); err != nil {
			return err
		}
		if err := tx.SetRoot("kv.index.v2", s.index.P); err != nil {
			return err
		}
		return tx.SetRoot("kv.order.v2", s.order.P)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// newRecord writes fields into a fresh record block.
func newRecord(tx *pmem.Tx, fields [][]byte) (pmem.Ptr, error) {
	size := recDir + 8*len(fields)
	for _, f := range fields {
		size += len(f)
	}
	rec, err := tx.Alloc(size, 0)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, size)
	binary.LittleEndian.PutUint64(buf, uint64(len(fields)))
	off := recDir + 8*len(fields)
	for i, f := range fields {
		binary.LittleEndian.PutUint32(buf[recDir+8*i:], uint32(off))
		binary.LittleEndian.PutUint32(buf[recDir+8*i+4:], uint32(len(f)))
		off += copy(buf[off:], f)
	}
	tx.Write(rec, buf)
	return rec, nil
}

// recordViews appends to views the fields of the record at rec, aliasing
// the heap (valid until the block ends).
func recordViews(tx *pmem.Tx, rec pmem.Ptr, views [][]byte) [][]byte {
	size := tx.PayloadSize(rec)
	b := tx.Bytes(rec, size)
	n := binary.LittleEndian.Uint64(b)
	if n > uint64(size-recDir)/8 {
		panic(&pmem.CorruptError{File: tx.Heap().Name(), Msg: fmt.Sprintf("record %d claims %d fields", rec, n)})
	}
	for i := 0; i < int(n); i++ {
		off := binary.LittleEndian.Uint32(b[recDir+8*i:])
		l := binary.LittleEndian.Uint32(b[recDir+8*i+4:])
		if uint64(off)+uint64(l) > uint64(size) {
			panic(&pmem.CorruptError{File: tx.Heap().Name(), Msg: fmt.Sprintf("record %d field %d out of its block", rec, i)})
		}
		views = append(views, b[off:off+l:off+l])
	}
	return views
}

// Heap returns the store's heap.
func (s *Pmem) Heap() *pmem.Heap { return s.h }

// Insert implements Store.
func (s *Pmem) Insert(key string, fields [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h.Atomic(func(tx *pmem.Tx) error {
		rec, err := newRecord(tx, fields)
		if err != nil {
			return err
		}
		old, existed, err := s.index.Put(tx, []byte(key), uint64(rec))
		if err != nil {
			return err
		}
		if existed {
			tx.Free(pmem.Ptr(old))
		}
		_, _, err = s.order.Put(tx, []byte(key), uint64(rec))
		return err
	})
}

// Read implements Store: the fields are copied straight from the heap into
// dst, with no intermediate copy and, when dst has the room, no allocation.
func (s *Pmem) Read(key string, dst [][]byte) (fields [][]byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fields = dst
	err = s.h.View(func(tx *pmem.Tx) error {
		rec, ok := s.index.Get(tx, []byte(key))
		if !ok {
			return ErrNotFound
		}
		s.views = recordViews(tx, pmem.Ptr(rec), s.views[:0])
		fields = copyInto(dst, s.views)
		return nil
	})
	return fields, err
}

// Update implements Store.
func (s *Pmem) Update(key string, i int, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h.Atomic(func(tx *pmem.Tx) error {
		r, ok := s.index.Get(tx, []byte(key))
		if !ok {
			return ErrNotFound
		}
		rec := pmem.Ptr(r)
		n := int(tx.U64(rec))
		if i < 0 || i >= n {
			return ErrNotFound
		}
		dir := rec + pmem.Ptr(recDir+8*i)
		w := tx.U64(dir)
		off, l := uint32(w), uint32(w>>32)
		slot := uint32(tx.PayloadSize(rec)) - off // room up to the block's end
		if i+1 < n {
			slot = uint32(tx.U64(dir+8)) - off
		}
		if uint32(len(value)) <= slot {
			tx.Write(rec+pmem.Ptr(off), value)
			if uint32(len(value)) != l {
				tx.SetU64(dir, uint64(off)|uint64(len(value))<<32)
			}
			return nil
		}
		// The value outgrew its slot: a new record replaces the old one.
		fields := recordViews(tx, rec, nil)
		fields[i] = value
		nrec, err := newRecord(tx, fields)
		if err != nil {
			return err
		}
		if _, _, err := s.index.Put(tx, []byte(key), uint64(nrec)); err != nil {
			return err
		}
		if _, _, err := s.order.Put(tx, []byte(key), uint64(nrec)); err != nil {
			return err
		}
		tx.Free(rec)
		return nil
	})
}

// Scan implements Store. The fields passed to fn alias the heap: fn may
// only use them during the call, which the Store contract allows.
//
// It first walks the sorted map to collect the n entries, then touches
// every record's block header, then reads the records: the skip-list walk
// is a chain of dependent loads, but the records' loads are independent, so
// their cache misses overlap instead of each waiting behind the next node's.
func (s *Pmem) Scan(start string, n int, fn func(string, [][]byte) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h.View(func(tx *pmem.Tx) error {
		s.batch = s.batch[:0]
		s.order.Ascend(tx, []byte(start), func(k []byte, v uint64) bool {
			if len(s.batch) >= n {
				return false
			}
			s.batch = append(s.batch, scanEntry{k, pmem.Ptr(v)})
			return true
		})
		for _, e := range s.batch {
			tx.PayloadSize(e.rec)
		}
		for _, e := range s.batch {
			s.views = recordViews(tx, e.rec, s.views[:0])
			if !fn(string(e.key), s.views) {
				break
			}
		}
		return nil
	})
}

// scanEntry is a key (aliasing the heap) and its record, collected by Scan.
type scanEntry struct {
	key []byte
	rec pmem.Ptr
}

// Close implements Store.
func (s *Pmem) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h.Close()
}

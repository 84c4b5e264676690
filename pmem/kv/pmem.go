package kv

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/blossom-dso/blossom/pmem"
)

// Pmem keeps records as persistent objects in a pmem heap. Roots: "kv.index",
// a traced hash map from key to record; "kv.order", an untraced sorted map
// from key to record (for scans). A record is a block of field pointers, one
// byte string per field. Every write is one atomic block, durable when the
// method returns.
type Pmem struct {
	mu    sync.Mutex
	h     *pmem.Heap
	index pmem.HashMap
	order pmem.SortedMap
}

// OpenPmem opens the heap file at path, creating it with size bytes if it
// does not exist.
func OpenPmem(path string, size int64) (*Pmem, error) {
	var h *pmem.Heap
	var err error
	if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) {
		h, err = pmem.Create(path, size, nil)
	} else {
		h, err = pmem.Open(path)
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
		if p := tx.Root("kv.index"); p != 0 {
			s.index, s.order = pmem.HashMap{P: p}, pmem.SortedMap{P: tx.Root("kv.order")}
			if s.order.P == 0 {
				return fmt.Errorf("kv: heap %s has kv.index but no kv.order", h.Name())
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
		if err := tx.SetRoot("kv.index", s.index.P); err != nil {
			return err
		}
		return tx.SetRoot("kv.order", s.order.P)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Heap returns the store's heap.
func (s *Pmem) Heap() *pmem.Heap { return s.h }

// Insert implements Store.
func (s *Pmem) Insert(key string, fields [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h.Atomic(func(tx *pmem.Tx) error {
		rec, err := tx.Alloc(8*len(fields), len(fields))
		if err != nil {
			return err
		}
		for i, f := range fields {
			p, err := pmem.NewBytes(tx, f)
			if err != nil {
				return err
			}
			tx.SetPtr(rec+pmem.Ptr(8*i), p)
		}
		old, existed, err := s.index.Put(tx, []byte(key), uint64(rec))
		if err != nil {
			return err
		}
		if existed {
			freeRecord(tx, pmem.Ptr(old))
		}
		_, _, err = s.order.Put(tx, []byte(key), uint64(rec))
		return err
	})
}

func freeRecord(tx *pmem.Tx, rec pmem.Ptr) {
	n := tx.PayloadSize(rec) / 8
	for i := 0; i < n; i++ {
		tx.Free(tx.Ptr(rec + pmem.Ptr(8*i)))
	}
	tx.Free(rec)
}

// readRecord copies the record's fields out of the heap, into one buffer.
func readRecord(tx *pmem.Tx, rec pmem.Ptr, nf int) [][]byte {
	var src [16][]byte
	views := src[:0]
	total := 0
	for i := 0; i < nf; i++ {
		p := tx.Ptr(rec + pmem.Ptr(8*i))
		if p == 0 {
			break
		}
		b := pmem.BytesOf(tx, p)
		views = append(views, b)
		total += len(b)
	}
	buf := make([]byte, 0, total)
	fields := make([][]byte, len(views))
	for i, b := range views {
		buf = append(buf, b...)
		fields[i] = buf[len(buf)-len(b) : len(buf) : len(buf)]
	}
	return fields
}

// recordFields is the number of field slots of a record block: its payload
// words, of which the used ones are non-zero.
func recordFields(tx *pmem.Tx, rec pmem.Ptr) int { return tx.PayloadSize(rec) / 8 }

// Read implements Store.
func (s *Pmem) Read(key string) (fields [][]byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	err = s.h.View(func(tx *pmem.Tx) error {
		rec, ok := s.index.Get(tx, []byte(key))
		if !ok {
			return ErrNotFound
		}
		fields = readRecord(tx, pmem.Ptr(rec), recordFields(tx, pmem.Ptr(rec)))
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
		rec := pmem.Ptr(r)
		if !ok || i < 0 || i >= recordFields(tx, rec) {
			return ErrNotFound
		}
		slot := rec + pmem.Ptr(8*i)
		old := tx.Ptr(slot)
		if old == 0 {
			return ErrNotFound
		}
		p, err := pmem.SetBytes(tx, old, value)
		if err != nil {
			return err
		}
		if p != old {
			tx.SetPtr(slot, p)
		}
		return nil
	})
}

// Scan implements Store.
func (s *Pmem) Scan(start string, n int, fn func(string, [][]byte) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h.View(func(tx *pmem.Tx) error {
		var fields [][]byte
		s.order.Ascend(tx, []byte(start), func(k []byte, v uint64) bool {
			if n <= 0 {
				return false
			}
			n--
			// The fields alias the heap: fn may only use them during the
			// call, which the Store contract allows.
			rec := pmem.Ptr(v)
			fields = fields[:0]
			for i := 0; i < recordFields(tx, rec); i++ {
				p := tx.Ptr(rec + pmem.Ptr(8*i))
				if p == 0 {
					break
				}
				fields = append(fields, pmem.BytesOf(tx, p))
			}
			return fn(string(k), fields)
		})
		return nil
	})
}

// Close implements Store.
func (s *Pmem) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h.Close()
}

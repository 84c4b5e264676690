package server

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/pmem"
)

// DefaultPmemSize is the size of a pmem heap a server creates when
// Config.PmemSize is 0.
const DefaultPmemSize = 256 << 20

// pmemStore keeps the object table in a pmem heap: the root "dso.objects"
// is a traced hash map from type + "\x00" + key to a byte string holding the
// object's state (Persister.MarshalState). Each save is one atomic block: the
// new state goes into a fresh block, the map entry is pointed at it and the
// old block is freed, so after a crash an object has either its old or its
// new state.
type pmemStore struct {
	h    *pmem.Heap
	m    pmem.HashMap
	incs pmem.HashMap // the same keys to each object's incarnation
	own  bool         // the server opened h and closes it
}

// ParseStorage parses a --storage flag value: "memory" (or "") returns "",
// "pmem:PATH" returns PATH.
func ParseStorage(s string) (pmemPath string, err error) {
	switch {
	case s == "" || s == "memory":
		return "", nil
	case strings.HasPrefix(s, "pmem:") && len(s) > len("pmem:"):
		return s[len("pmem:"):], nil
	}
	return "", fmt.Errorf("storage %q: want memory or pmem:PATH", s)
}

// OpenPmemHeap opens the pmem heap file at path, or creates it with size
// bytes (0 means DefaultPmemSize) if it does not exist. A file that is not
// a heap of this version is refused with an error naming it.
func OpenPmemHeap(path string, size int64) (*pmem.Heap, error) {
	if size == 0 {
		size = DefaultPmemSize
	}
	if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) {
		return pmem.Create(path, size, nil)
	}
	return pmem.Open(path)
}

// openPmemStore keeps the object table in h, which it closes on close
// only if own.
func openPmemStore(h *pmem.Heap, own bool) (*pmemStore, error) {
	st := &pmemStore{h: h, own: own}
	err := h.Atomic(func(tx *pmem.Tx) error {
		var err error
		if st.m, err = pmem.RootHashMap(tx, "dso.objects", true); err != nil {
			return err
		}
		st.incs, err = pmem.RootHashMap(tx, "dso.incarnations", false)
		return err
	})
	if err != nil {
		if own {
			h.Close()
		}
		return nil, err
	}
	return st, nil
}

func storeKey(ref dso.Ref) []byte {
	b := make([]byte, 0, len(ref.Type)+1+len(ref.Key))
	b = append(b, ref.Type...)
	b = append(b, 0)
	return append(b, ref.Key...)
}

// save makes state the durable state of ref, and inc its incarnation if
// not 0 (when the object was created).
func (st *pmemStore) save(ref dso.Ref, state []byte, inc uint64) error {
	return st.h.Atomic(func(tx *pmem.Tx) error {
		p, err := pmem.NewBytes(tx, state)
		if err != nil {
			return err
		}
		if inc != 0 {
			if _, _, err := st.incs.Put(tx, storeKey(ref), inc); err != nil {
				return err
			}
		}
		old, existed, err := st.m.Put(tx, storeKey(ref), uint64(p))
		if err != nil {
			return err
		}
		if existed {
			tx.Free(pmem.Ptr(old))
		}
		return nil
	})
}

// remove forgets ref.
func (st *pmemStore) remove(ref dso.Ref) error {
	return st.h.Atomic(func(tx *pmem.Tx) error {
		if old, ok := st.m.Delete(tx, storeKey(ref)); ok {
			tx.Free(pmem.Ptr(old))
		}
		st.incs.Delete(tx, storeKey(ref))
		return nil
	})
}

// each calls fn with every stored object's ref, state and incarnation (0
// if the heap has none for it: written before incarnations were kept).
func (st *pmemStore) each(fn func(ref dso.Ref, state []byte, inc uint64) error) error {
	return st.h.View(func(tx *pmem.Tx) error {
		var err error
		st.m.Range(tx, func(k []byte, v uint64) bool {
			typ, key, ok := strings.Cut(string(k), "\x00")
			if !ok {
				err = fmt.Errorf("server: %s: malformed object key %q", st.h.Name(), k)
				return false
			}
			inc, _ := st.incs.Get(tx, k)
			err = fn(dso.Ref{Type: typ, Key: key}, append([]byte(nil), pmem.BytesOf(tx, pmem.Ptr(v))...), inc)
			return err == nil
		})
		return err
	})
}

func (st *pmemStore) close() error {
	if !st.own {
		return nil
	}
	return st.h.Close()
}

// restore rebuilds the object table from the store: each object is made by
// its type's constructor without arguments, then given its saved state.
func (s *Server) restore() error {
	n := 0
	err := s.store.each(func(ref dso.Ref, state []byte, inc uint64) error {
		ctor, name, ok := s.reg.Lookup(ref.Type)
		if !ok {
			return fmt.Errorf("server: %s: stored object %s has a type this server does not know", s.store.h.Name(), ref)
		}
		ref.Type = name
		obj, err := ctor(nil)
		if err != nil {
			return fmt.Errorf("server: restore %s: %w", ref, err)
		}
		p, ok := obj.(dso.Persister)
		if !ok {
			return fmt.Errorf("server: restore %s: type %s cannot persist", ref, ref.Type)
		}
		if err := p.UnmarshalState(state); err != nil {
			return fmt.Errorf("server: restore %s: %w", ref, err)
		}
		sh, h := s.table(ref.Type, true).shard(ref.Key)
		if inc == 0 {
			inc = s.nextIncarnation()
		}
		sh.m.put(&entry{obj: obj, inc: inc, key: ref.Key}, h)
		s.nobj.Add(1)
		n++
		return nil
	})
	if err == nil {
		s.log.Info("dso: restored objects from pmem", "file", s.store.h.Name(), "objects", n)
	}
	return err
}

// persist saves e's state after a successful call unless the method only
// reads, and its incarnation too if created. It runs with e.mu held. A
// failure leaves the object changed in memory but not on the medium, and
// is reported to the caller.
func (s *Server) persist(e *entry, inv *dso.Invocation, created bool) error {
	if ro, ok := e.obj.(dso.ReadOnlyMethods); ok && ro.ReadOnly(inv.Method) && !created {
		return nil
	}
	inc := uint64(0)
	if created {
		inc = e.inc
	}
	state, err := e.obj.(dso.Persister).MarshalState() // lookup refuses the others
	if err != nil {
		return fmt.Errorf("%w: %s: encode state for pmem: %v", dso.ErrInternal, inv.Ref, err)
	}
	if err := s.store.save(inv.Ref, state, inc); err != nil {
		return fmt.Errorf("%w: %s.%s was applied but not saved to pmem: %v", dso.ErrInternal, inv.Ref, inv.Method, err)
	}
	return nil
}

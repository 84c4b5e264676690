// Package snapstore keeps the snapshots of write-ahead logs in a pmem heap:
// a wal.SnapshotStore whose Save writes the snapshot into fresh heap blocks
// and swaps it in under its name in one failure-atomic block, so that a
// crash at any point leaves the previous snapshot or the new one, whole.
// A replica group's log (storage/wal) then keeps only its records in files;
// `blossom server --storage pmem:PATH` uses it for the groups of persistent
// objects, in the same heap as the ephemeral objects.
//
// # Layout
//
// The heap root "blossom.snapshots" is a traced pmem.HashMap from a name
// (one per log: "group-3") to a snapshot: a 32-byte block
//
//	[table Ptr][index u64][length u64][crc32c of the data u64]
//
// whose first word points to a table of n = ceil(length / ChunkBytes)
// pointers to pmem byte strings of ChunkBytes each (the last one shorter),
// which hold the data in order. The table pointer is 0 for empty data.
// Chunks of one fixed size class are reused by the next snapshot of any
// size, so the heap does not fragment as snapshots grow and shrink.
//
// # Save
//
// One pmem.Heap.Atomic block allocates and fills the chunks, the table and
// the snapshot block (fresh blocks: written in place, not logged), puts the
// snapshot under its name in the map and frees the old snapshot's blocks
// (logged, applied at commit). Until the block's commit point the old
// snapshot is the one reachable; after it, the new one; recovery collects
// whatever became unreachable. Load checks the blocks it follows, the sizes
// and the crc, and refuses a damaged snapshot with an error naming the heap
// file and the snapshot (wrapping pmem.ErrCorrupt).
//
// Save and Load hold the heap for the whole copy, so other users of the
// heap (a server's ephemeral objects) wait that long: 0.5 to 2 ms of CPU
// per MiB of snapshot as measured here (see docs/EXPERIMENTS.md). A heap
// must have room for two copies of each snapshot, the old and the new,
// besides its other contents; when it has not, Save fails with
// pmem.ErrOutOfMemory, the old snapshot stays and the log is not
// compacted.
package snapstore

import (
	"fmt"
	"hash/crc32"

	"github.com/blossom-dso/blossom/pmem"
	"github.com/blossom-dso/blossom/storage/wal"
)

// Root is the name of the heap root holding the snapshot map.
const Root = "blossom.snapshots"

// ChunkBytes is the size of the data in one chunk: a 256 KiB block less
// its header and the byte string's length word.
const ChunkBytes = 256<<10 - 16 - 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Store is the snapshot map of one heap. Its methods and those of the
// SnapshotStores it hands out are safe for concurrent use (each runs in a
// heap block, which the heap serializes).
type Store struct {
	h *pmem.Heap
	m pmem.HashMap
	// splitSwap is a sabotage for tests: Save removes the old snapshot in
	// one atomic block and puts the new one in a second.
	splitSwap bool
}

// Open returns the snapshot map of h, creating the root if the heap has
// none. The heap stays the caller's to close, after every use of the Store.
func Open(h *pmem.Heap) (*Store, error) {
	s := &Store{h: h}
	err := h.Atomic(func(tx *pmem.Tx) error {
		var err error
		s.m, err = pmem.RootHashMap(tx, Root, true)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("snapstore: %s: %w", h.Name(), err)
	}
	return s, nil
}

// Names returns the names that hold a snapshot, in the map's order.
func (s *Store) Names() ([]string, error) {
	var out []string
	err := s.h.View(func(tx *pmem.Tx) error {
		s.m.Range(tx, func(k []byte, _ uint64) bool {
			out = append(out, string(k))
			return true
		})
		return nil
	})
	return out, err
}

// Named returns the wal.SnapshotStore of the snapshot called name (one per
// log; names of up to a few hundred bytes).
func (s *Store) Named(name string) *Snapshots { return &Snapshots{s: s, name: name} }

// Snapshots is one named snapshot of a Store; it implements
// wal.SnapshotStore.
type Snapshots struct {
	s    *Store
	name string
}

var _ wal.SnapshotStore = (*Snapshots)(nil)

// String names the heap file and the snapshot.
func (n *Snapshots) String() string {
	return fmt.Sprintf("pmem heap %s (snapshot %q)", n.s.h.Name(), n.name)
}

// Snapshot block fields.
const (
	fTable  = 0
	fIndex  = 8
	fLength = 16
	fCRC    = 24
	hdrSize = 32
)

func chunks(length uint64) uint64 { return (length + ChunkBytes - 1) / ChunkBytes }

// Load implements wal.SnapshotStore: the snapshot saved under the name, or
// (0, nil, nil) if there is none.
func (n *Snapshots) Load() (index uint64, data []byte, err error) {
	err = n.s.h.View(func(tx *pmem.Tx) error {
		p, ok := n.s.m.Get(tx, []byte(n.name))
		if !ok {
			return nil
		}
		hp := pmem.Ptr(p)
		if tx.PayloadSize(hp) < hdrSize {
			return n.corrupt("snapshot block %d is %d bytes", hp, tx.PayloadSize(hp))
		}
		index = tx.U64(hp + fIndex)
		length := tx.U64(hp + fLength)
		table, nc := tx.Ptr(hp+fTable), chunks(length)
		if (table == 0) != (nc == 0) || (nc > 0 && uint64(tx.PayloadSize(table)) < 8*nc) {
			return n.corrupt("snapshot of %d bytes has a chunk table at %d that does not fit it", length, table)
		}
		data = make([]byte, 0, length)
		for i := range nc {
			c := pmem.BytesOf(tx, tx.Ptr(table+pmem.Ptr(8*i)))
			if want := min(ChunkBytes, length-i*ChunkBytes); uint64(len(c)) != want {
				return n.corrupt("chunk %d holds %d bytes, want %d", i, len(c), want)
			}
			data = append(data, c...)
		}
		if crc := uint64(crc32.Checksum(data, castagnoli)); crc != tx.U64(hp+fCRC) {
			return n.corrupt("snapshot at index %d fails its checksum", index)
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return index, data, nil
}

func (n *Snapshots) corrupt(format string, args ...any) error {
	return fmt.Errorf("snapstore: %s: snapshot %q: %s: %w", n.s.h.Name(), n.name, fmt.Sprintf(format, args...), pmem.ErrCorrupt)
}

// Save implements wal.SnapshotStore: one atomic block writes data into
// fresh blocks, puts it under the name and frees the previous snapshot.
// A heap too small for both fails with pmem.ErrOutOfMemory and keeps the
// previous snapshot.
func (n *Snapshots) Save(index uint64, data []byte) error {
	h, key := n.s.h, []byte(n.name)
	if n.s.splitSwap {
		if err := h.Atomic(func(tx *pmem.Tx) error {
			if old, ok := n.s.m.Delete(tx, key); ok {
				free(tx, pmem.Ptr(old))
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return h.Atomic(func(tx *pmem.Tx) error {
		length := uint64(len(data))
		nc := chunks(length)
		var table pmem.Ptr
		if nc > 0 {
			var err error
			if table, err = tx.Alloc(int(8*nc), int(nc)); err != nil {
				return err
			}
		}
		for i := range nc {
			c, err := pmem.NewBytes(tx, data[i*ChunkBytes:min(length, (i+1)*ChunkBytes)])
			if err != nil {
				return err
			}
			tx.SetPtr(table+pmem.Ptr(8*i), c)
		}
		hp, err := tx.Alloc(hdrSize, 1)
		if err != nil {
			return err
		}
		tx.SetPtr(hp+fTable, table)
		tx.SetU64(hp+fIndex, index)
		tx.SetU64(hp+fLength, length)
		tx.SetU64(hp+fCRC, uint64(crc32.Checksum(data, castagnoli)))
		old, existed, err := n.s.m.Put(tx, key, uint64(hp))
		if err != nil {
			return err
		}
		if existed {
			free(tx, pmem.Ptr(old))
		}
		return nil
	})
}

// Delete removes the snapshot saved under the name, if any.
func (n *Snapshots) Delete() error {
	return n.s.h.Atomic(func(tx *pmem.Tx) error {
		if old, ok := n.s.m.Delete(tx, []byte(n.name)); ok {
			free(tx, pmem.Ptr(old))
		}
		return nil
	})
}

// free frees the snapshot block hp, its table and its chunks.
func free(tx *pmem.Tx, hp pmem.Ptr) {
	if table := tx.Ptr(hp + fTable); table != 0 {
		for i := range chunks(tx.U64(hp + fLength)) {
			tx.Free(tx.Ptr(table + pmem.Ptr(8*i)))
		}
		tx.Free(table)
	}
	tx.Free(hp)
}

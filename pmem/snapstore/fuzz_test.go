package snapstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
	"github.com/blossom-dso/blossom/pmem"
)

// fuzzSnapshot is the snapshot FuzzLoad damages: two chunks.
var fuzzSnapshot = data(21, ChunkBytes+1000)

// patch encodes one damage of FuzzLoad: block (0 the snapshot block, 1 the
// chunk table, 2.. the chunks), offset in its payload, value.
func patch(block byte, off uint16, v ...byte) []byte {
	b := []byte{block, 0, 0, byte(len(v))}
	binary.LittleEndian.PutUint16(b[1:], off)
	return append(b, v...)
}

func fuzzSeeds() [][]byte {
	return [][]byte{
		{},
		patch(0, fIndex, 9),                    // another index: still whole
		patch(0, fLength, 0xff, 0xff, 0xff, 0), // a length the chunks do not hold
		patch(0, fTable, 0x40),                 // a table pointer into nothing
		patch(0, fCRC, 1),                      // a checksum that does not match
		patch(1, 8, 0x10),                      // a chunk pointer that is no block
		patch(2, 0, 0xff, 0xff, 0xff),          // a chunk longer than it says
		patch(3, 500, 0xaa),                    // a damaged data byte
	}
}

func TestFuzzLoadSeedsCheckedIn(t *testing.T) {
	fuzzseed.Check(t, "FuzzLoad", fuzzSeeds())
}

// FuzzLoad damages the blocks of a saved snapshot (a sequence of block,
// offset, length, bytes patches) and loads it: Load must return the
// snapshot whole or an error wrapping pmem.ErrCorrupt, never panic and
// never other data.
func FuzzLoad(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := pmem.NewVolatile(4<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(h)
		if err != nil {
			t.Fatal(err)
		}
		g := s.Named("group-0")
		if err := g.Save(7, fuzzSnapshot); err != nil {
			t.Fatal(err)
		}
		var blocks []pmem.Ptr
		_ = h.View(func(tx *pmem.Tx) error {
			p, _ := s.m.Get(tx, []byte("group-0"))
			hp := pmem.Ptr(p)
			table := tx.Ptr(hp + fTable)
			blocks = []pmem.Ptr{hp, table, tx.Ptr(table), tx.Ptr(table + 8)}
			return nil
		})
		for len(in) >= 4 {
			blk, off, n := int(in[0])%len(blocks), int(binary.LittleEndian.Uint16(in[1:])), int(in[3])
			in = in[4:]
			v := in[:min(n, len(in))]
			in = in[len(v):]
			_ = h.Atomic(func(tx *pmem.Tx) error {
				p := blocks[blk]
				if size := tx.PayloadSize(p); off+len(v) > size {
					v = v[:max(0, size-off)]
				}
				if len(v) > 0 {
					tx.Write(p+pmem.Ptr(off), v)
				}
				return nil
			})
		}
		_, got, err := g.Load()
		switch {
		case err != nil:
			if !errors.Is(err, pmem.ErrCorrupt) {
				t.Fatalf("Load failed without calling the heap corrupt: %v", err)
			}
		case !bytes.Equal(got, fuzzSnapshot):
			t.Fatalf("Load returned %d bytes that are not the snapshot", len(got))
		}
	})
}

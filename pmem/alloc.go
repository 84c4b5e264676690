package pmem

import (
	"encoding/binary"
	"fmt"
)

// Block header, the 16 bytes before every payload:
//
//	[0:2) blockTag  [2] size class  [3] state  [4:8) nptr  [8:16) next free
//
// nptr is the number of leading payload words that are pointers (0 or the
// Ptr of an allocated block); the recovery-time collector follows them and
// nothing else. next links free blocks of one class.
const (
	blockHdr   = 16
	blockTag0  = 0xB1
	blockTag1  = 0x0C
	stateAlloc = 1
	stateFree  = 2
)

// classSize[c] is the total size (header included) of a block of class c:
// 32, 48, ..., 128 by 16, then four classes per doubling (160, 192, 224, 256,
// 320, ...), so internal waste stays under 25%.
var classSize []uint64

const maxClasses = 256

func init() {
	for s := uint64(32); s <= 128; s += 16 {
		classSize = append(classSize, s)
	}
	for base := uint64(128); base < 1<<46; base *= 2 {
		for q := uint64(1); q <= 4; q++ {
			classSize = append(classSize, base+q*base/4)
		}
	}
	if len(classSize) > maxClasses || freeHeadsOff+8*len(classSize) > rootsOff {
		panic("pmem: too many size classes")
	}
}

// classFor returns the smallest class whose blocks hold a payload of n bytes.
func classFor(n uint64) (int, bool) {
	need := n + blockHdr
	lo, hi := 0, len(classSize)
	for lo < hi {
		m := (lo + hi) / 2
		if classSize[m] >= need {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo, lo < len(classSize)
}

func putBlockHdr(b []byte, class int, state byte, nptr uint32, next uint64) {
	b[0], b[1], b[2], b[3] = blockTag0, blockTag1, byte(class), state
	binary.LittleEndian.PutUint32(b[4:], nptr)
	binary.LittleEndian.PutUint64(b[8:], next)
}

// Alloc allocates a block with a payload of at least size bytes, of which the
// first nptr words are pointers that the recovery-time collector follows.
// Those nptr words are zeroed; the rest of the payload is unspecified. The
// allocation is part of the block: it is undone if the block rolls back. Writes
// to the new block within the same block are not logged.
func (tx *Tx) Alloc(size int, nptr int) (Ptr, error) {
	tx.writable()
	if size < 0 || nptr < 0 || uint64(nptr)*8 > uint64(size) {
		return 0, fmt.Errorf("pmem: Alloc(%d, %d): bad size", size, nptr)
	}
	c, ok := classFor(uint64(size))
	if !ok {
		return 0, fmt.Errorf("%w: %d bytes", ErrOutOfMemory, size)
	}
	h := tx.h
	if !tx.haveBase {
		tx.baseTop, tx.haveBase = tx.U64(topOff), true
	}
	headOff := Ptr(freeHeadsOff + 8*c)
	var blk uint64
	if head := tx.U64(headOff); head != 0 {
		// Pop: the block's header and the list head change through the log.
		if head < h.hd.dataOff || head+classSize[c] > h.hd.size {
			panic(h.corrupt("free list %d head %d outside the heap", c, head))
		}
		var hb [blockHdr]byte
		tx.Read(Ptr(head), hb[:])
		if hb[0] != blockTag0 || hb[1] != blockTag1 || int(hb[2]) != c || hb[3] != stateFree {
			panic(h.corrupt("free list %d holds a bad block at %d", c, head))
		}
		tx.SetU64(headOff, binary.LittleEndian.Uint64(hb[8:]))
		putBlockHdr(hb[:], c, stateAlloc, uint32(nptr), 0)
		tx.write(head, hb[:], false)
		blk = head
	} else {
		// Carve at the top: only top changes through the log; the new block
		// lies beyond the committed top, so its header is written in place.
		top := tx.U64(topOff)
		if top < h.hd.dataOff || top > h.hd.size || h.hd.size-top < classSize[c] {
			if top < h.hd.dataOff || top > h.hd.size {
				panic(h.corrupt("allocator top %d outside the heap", top))
			}
			return 0, fmt.Errorf("%w: %d bytes", ErrOutOfMemory, size)
		}
		tx.SetU64(topOff, top+classSize[c])
		blk = top
		var hb [blockHdr]byte
		putBlockHdr(hb[:], c, stateAlloc, uint32(nptr), 0)
		tx.write(blk, hb[:], true)
	}
	if blk < tx.baseTop {
		tx.fresh = append(tx.fresh, [2]uint64{blk + blockHdr, blk + classSize[c]})
	}
	p := Ptr(blk + blockHdr)
	if nptr > 0 {
		tx.write(uint64(p), make([]byte, 8*nptr), true)
	}
	return p, nil
}

// Free releases the block whose payload starts at p. The block goes back to
// its class's free list when the atomic block commits (so it is not reused,
// and stays intact, until then). Freeing the same block twice in one block
// counts once.
func (tx *Tx) Free(p Ptr) {
	tx.writable()
	if p == 0 {
		return
	}
	tx.blockInfo(p) // validate now
	if tx.freed[p] {
		return
	}
	if tx.freed == nil {
		tx.freed = make(map[Ptr]bool)
	}
	tx.freed[p] = true
	tx.frees = append(tx.frees, p)
}

// PayloadSize returns the usable payload size of the block at p.
func (tx *Tx) PayloadSize(p Ptr) int {
	c, _ := tx.blockInfo(p)
	return int(classSize[c] - blockHdr)
}

// blockInfo validates that p is the payload of an allocated block and
// returns its class and nptr.
func (tx *Tx) blockInfo(p Ptr) (int, uint32) {
	h := tx.h
	if uint64(p) < h.hd.dataOff+blockHdr || uint64(p) > h.hd.size || p%16 != 0 {
		panic(h.corrupt("pointer %d is not a block", p))
	}
	// The first header word holds everything checked: tag, class, state
	// and nptr (the free link is the second word).
	w := tx.U64(p - blockHdr)
	c := int(byte(w >> 16))
	if uint16(w) != blockTag0|blockTag1<<8 || byte(w>>24) != stateAlloc || c >= len(classSize) ||
		uint64(p)-blockHdr+classSize[c] > h.hd.size {
		panic(h.corrupt("pointer %d is not an allocated block", p))
	}
	return c, uint32(w >> 32)
}

// release pushes block p on its free list, through the log.
func (tx *Tx) release(p Ptr) {
	c, _ := tx.blockInfo(p)
	headOff := Ptr(freeHeadsOff + 8*c)
	var hb [blockHdr]byte
	putBlockHdr(hb[:], c, stateFree, 0, tx.U64(headOff))
	blk := uint64(p) - blockHdr
	tx.write(blk, hb[:], tx.isFresh(blk, blockHdr))
	tx.SetU64(headOff, uint64(blk))
}

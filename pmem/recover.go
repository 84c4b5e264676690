package pmem

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// RecoveryStats describes what opening a heap did.
type RecoveryStats struct {
	Replayed      bool   // a committed atomic block was found in the log and re-applied
	ReplayedLines int    // cache lines it re-applied
	Blocks        int    // blocks in the heap
	Reachable     int    // allocated blocks reachable from the roots
	Freed         int    // allocated blocks the collector freed (unreachable)
	FreedBytes    uint64 // their total size
}

func (h *Heap) recover() error {
	mem := h.mem
	hdr := mem[logOff : logOff+LineSize]
	if binary.LittleEndian.Uint64(hdr) == logMagic {
		seq := binary.LittleEndian.Uint64(hdr[8:])
		n := binary.LittleEndian.Uint64(hdr[16:])
		h.seq = seq
		if n <= (h.hd.logSize-LineSize)/logRecSize {
			body := mem[logBodyOff : logBodyOff+n*logRecSize]
			if binary.LittleEndian.Uint32(hdr[24:]) == logCRC(hdr[8:24], body) {
				// Committed: validate every record before touching anything.
				for i := uint64(0); i < n; i++ {
					off := binary.LittleEndian.Uint64(body[i*logRecSize:])
					inMeta := off >= metaOff && off < metaOff+metaSize
					inData := off >= h.hd.dataOff && off < h.hd.size
					if off%LineSize != 0 || !(inMeta || inData) || off+LineSize > h.hd.size {
						return fmt.Errorf("pmem: %s: %w: redo log record %d targets offset %d", h.name, ErrCorrupt, i, off)
					}
				}
				for i := uint64(0); i < n; i++ {
					r := body[i*logRecSize:]
					off := binary.LittleEndian.Uint64(r)
					copy(mem[off:off+LineSize], r[8:logRecSize])
					h.dev.flush(int(off), LineSize)
				}
				h.dev.fence()
				h.recovery.Replayed = true
				h.recovery.ReplayedLines = int(n)
			}
		}
	}
	if !bytes.Equal(hdr, make([]byte, LineSize)) {
		clear(hdr)
		h.dev.flush(logOff, LineSize)
		h.dev.fence()
	}
	return h.collect()
}

// bitset is a volatile set of 16-byte granules.
type bitset []uint64

func (b bitset) get(i uint64) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (b bitset) set(i uint64)      { b[i/64] |= 1 << (i % 64) }

// graph is the result of walking and marking the committed heap.
type graph struct {
	top      uint64
	starts   bitset // block starts
	marked   bitset // reachable allocated blocks
	blocks   int
	free     int
	freeSize uint64
	alloc    int
	reach    int
}

func (h *Heap) gran(off uint64) uint64 { return (off - h.hd.dataOff) / 16 }

// walk validates the block sequence and the pointer graph of the committed
// heap and marks what the roots reach.
func (h *Heap) walk() (*graph, error) {
	mem := h.mem
	bad := func(format string, args ...any) (*graph, error) {
		return nil, fmt.Errorf("pmem: %s: %w: %s", h.name, ErrCorrupt, fmt.Sprintf(format, args...))
	}
	g := &graph{top: binary.LittleEndian.Uint64(mem[topOff:])}
	if g.top < h.hd.dataOff || g.top > h.hd.size || (g.top-h.hd.dataOff)%16 != 0 {
		return bad("allocator top %d outside the data area", g.top)
	}
	words := ((g.top-h.hd.dataOff)/16 + 63) / 64
	g.starts, g.marked = make(bitset, words), make(bitset, words)
	for o := h.hd.dataOff; o < g.top; {
		b := mem[o : o+blockHdr]
		c := int(b[2])
		if o+blockHdr > g.top || b[0] != blockTag0 || b[1] != blockTag1 || c >= len(classSize) ||
			(b[3] != stateAlloc && b[3] != stateFree) || classSize[c] > g.top-o {
			return bad("bad block header at %d", o)
		}
		g.starts.set(h.gran(o))
		g.blocks++
		if b[3] == stateFree {
			g.free++
			g.freeSize += classSize[c]
		} else {
			g.alloc++
		}
		o += classSize[c]
	}
	// isAlloc reports whether p is the payload of an allocated block.
	isAlloc := func(p uint64) bool {
		if p < h.hd.dataOff+blockHdr || p > g.top || p%16 != 0 {
			return false
		}
		blk := p - blockHdr
		return g.starts.get(h.gran(blk)) && mem[blk+3] == stateAlloc
	}
	var stack []uint64
	// push marks p, found in word j of block (or root slot j if block is 0).
	push := func(p, block, j uint64) error {
		if p == 0 {
			return nil
		}
		if !isAlloc(p) {
			from := fmt.Sprintf("root slot %d", j)
			if block != 0 {
				from = fmt.Sprintf("block %d word %d", block, j)
			}
			return fmt.Errorf("pmem: %s: %w: %s points to %d, not an allocated block", h.name, ErrCorrupt, from, p)
		}
		if i := h.gran(p - blockHdr); !g.marked.get(i) {
			g.marked.set(i)
			g.reach++
			stack = append(stack, p)
		}
		return nil
	}
	for i := 0; i < numRoots; i++ {
		s := mem[rootsOff+i*rootSlotSize:]
		if err := push(binary.LittleEndian.Uint64(s[maxRootName:]), 0, uint64(i)); err != nil {
			return nil, err
		}
	}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		blk := p - blockHdr
		c := mem[blk+2]
		nptr := uint64(binary.LittleEndian.Uint32(mem[blk+4:]))
		if nptr > (classSize[c]-blockHdr)/8 {
			return bad("block at %d claims %d pointers", blk, nptr)
		}
		for j := uint64(0); j < nptr; j++ {
			w := binary.LittleEndian.Uint64(mem[p+8*j:])
			if w != 0 {
				if err := push(w, p, j); err != nil {
					return nil, err
				}
			}
		}
	}
	return g, nil
}

// collect is the recovery-time collector: it frees every allocated block the
// roots do not reach and rebuilds every free list from the block headers. It
// only derives state from the block headers and the roots, so a crash in the
// middle of it is repaired by running it again.
func (h *Heap) collect() error {
	g, err := h.walk()
	if err != nil {
		return err
	}
	mem := h.mem
	heads := make([]uint64, len(classSize))
	var hb [blockHdr]byte
	for o := h.hd.dataOff; o < g.top; {
		b := mem[o : o+blockHdr]
		c := int(b[2])
		if b[3] == stateAlloc && !g.marked.get(h.gran(o)) {
			h.recovery.Freed++
			h.recovery.FreedBytes += classSize[c]
			b[3] = stateFree // a write only the collector makes; see below
		}
		if b[3] == stateFree {
			putBlockHdr(hb[:], c, stateFree, 0, heads[c])
			if !bytes.Equal(hb[:], b) {
				copy(b, hb[:])
				h.dev.flush(int(o), blockHdr)
			}
			heads[c] = o
		}
		o += classSize[c]
	}
	for c, v := range heads {
		binary.LittleEndian.PutUint64(mem[freeHeadsOff+8*c:], v)
	}
	h.dev.flush(freeHeadsOff, 8*len(heads))
	h.dev.fence()
	h.recovery.Blocks = g.blocks
	h.recovery.Reachable = g.reach
	return nil
}

// HeapStats summarises the committed state of a heap.
type HeapStats struct {
	Top        uint64 // end of the carved part of the data area
	Blocks     int    // blocks carved
	Allocated  int    // allocated blocks
	Free       int    // free blocks
	FreeBytes  uint64 // bytes in free blocks
	Reachable  int    // allocated blocks reachable from the roots
	DataOffset uint64 // start of the data area
}

// Check verifies the committed heap: every block header is valid, every
// pointer leads to an allocated block, every allocated block is reachable from
// the roots (no leak), and the free lists hold exactly the free blocks, each
// once and in its class. It returns the heap's statistics and the first
// violation found. It must not be called inside Atomic or View.
func (h *Heap) Check() (HeapStats, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, err := h.walk()
	if err != nil {
		return HeapStats{}, err
	}
	st := HeapStats{Top: g.top, Blocks: g.blocks, Allocated: g.alloc, Free: g.free, FreeBytes: g.freeSize, Reachable: g.reach, DataOffset: h.hd.dataOff}
	if g.reach != g.alloc {
		return st, fmt.Errorf("pmem: %s: leak: %d allocated blocks, %d reachable from the roots", h.name, g.alloc, g.reach)
	}
	mem := h.mem
	seen := make(bitset, len(g.starts))
	listed := 0
	for c := range classSize {
		for o := binary.LittleEndian.Uint64(mem[freeHeadsOff+8*c:]); o != 0; o = binary.LittleEndian.Uint64(mem[o+8:]) {
			if o < h.hd.dataOff || o >= g.top || !g.starts.get(h.gran(o)) || mem[o+3] != stateFree || int(mem[o+2]) != c {
				return st, fmt.Errorf("pmem: %s: free list %d holds %d, not a free block of its class", h.name, c, o)
			}
			if seen.get(h.gran(o)) {
				return st, fmt.Errorf("pmem: %s: free list %d visits block %d twice", h.name, c, o)
			}
			seen.set(h.gran(o))
			listed++
		}
	}
	if listed != g.free {
		return st, fmt.Errorf("pmem: %s: %d free blocks, %d on the free lists", h.name, g.free, listed)
	}
	return st, nil
}

// Root returns the pointer stored under name, or 0 if there is none.
func (tx *Tx) Root(name string) Ptr {
	if i := tx.rootSlot(name); i >= 0 {
		return tx.Ptr(Ptr(rootsOff + i*rootSlotSize + maxRootName))
	}
	return 0
}

// SetRoot stores p under name, as part of the block; p == 0 removes the
// root. Names are 1 to 48 bytes without NUL; a heap holds at most 64 roots.
func (tx *Tx) SetRoot(name string, p Ptr) error {
	if name == "" || len(name) > maxRootName || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("pmem: bad root name %q", name)
	}
	if p != 0 {
		tx.blockInfo(p)
	}
	i := tx.rootSlot(name)
	if i < 0 {
		if p == 0 {
			return nil
		}
		for j := 0; j < numRoots; j++ {
			if tx.U64(Ptr(rootsOff+j*rootSlotSize)) == 0 && tx.U64(Ptr(rootsOff+j*rootSlotSize+maxRootName)) == 0 {
				i = j
				break
			}
		}
		if i < 0 {
			return fmt.Errorf("pmem: no room for root %q (%d roots)", name, numRoots)
		}
	}
	var slot [rootSlotSize]byte
	if p != 0 {
		copy(slot[:maxRootName], name)
		binary.LittleEndian.PutUint64(slot[maxRootName:], uint64(p))
	}
	tx.Write(Ptr(rootsOff+i*rootSlotSize), slot[:])
	return nil
}

// Roots returns the names of the heap's roots, in slot order.
func (tx *Tx) Roots() []string {
	var names []string
	for i := 0; i < numRoots; i++ {
		b := tx.Bytes(Ptr(rootsOff+i*rootSlotSize), maxRootName)
		if n := bytes.IndexByte(b, 0); n != 0 {
			if n < 0 {
				n = maxRootName
			}
			names = append(names, string(b[:n]))
		}
	}
	return names
}

func (tx *Tx) rootSlot(name string) int {
	if name == "" || len(name) > maxRootName {
		return -1
	}
	for i := 0; i < numRoots; i++ {
		b := tx.Bytes(Ptr(rootsOff+i*rootSlotSize), maxRootName)
		if string(b[:len(name)]) == name && (len(name) == maxRootName || b[len(name)] == 0) {
			return i
		}
	}
	return -1
}

package pmem

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// Tx is an open failure-atomic block. Every write of the block goes through
// it: a write to a block allocated by this same Tx goes straight to the
// mapping (if the Tx rolls back, that block is unreachable garbage); any other
// write goes to a volatile copy of its cache line, and at commit the modified
// lines are written to the redo log, made durable, then copied in place.
// Reads through a Tx see the block's own writes.
//
// A Tx is valid only inside the function passed to Atomic or View.
type Tx struct {
	h        *Heap
	readOnly bool
	lines    map[uint64]*[LineSize]byte // line offset -> new contents
	order    []uint64                   // line offsets in first-write order
	fresh    [][2]uint64                // payloads of blocks this Tx took off free lists
	lastHit  int
	baseTop  uint64 // committed allocator top: everything above is fresh
	haveBase bool
	freed    map[Ptr]bool
	dirty    [][2]uint64 // direct writes to fresh blocks, to flush at commit
	frees    []Ptr       // blocks freed by this Tx, put on free lists at commit
	err      error       // a nested block failed: the whole block rolls back
	spare    []*[LineSize]byte
	mem      []byte // h.mem
	// lim bounds U64's fast path: off-metaOff < lim reads the mapping
	// directly. It is size-metaOff-7 while the overlay is empty, 0 after.
	lim uint64
}

// newTx returns the heap's reusable Tx, reset, or a new one; the heap's
// lock is held. Reusing the Tx (its maps, slices and line buffers) keeps
// small blocks free of allocations.
func (h *Heap) newTx(readOnly bool) *Tx {
	tx := h.txFree
	if tx == nil {
		return &Tx{h: h, readOnly: readOnly, mem: h.mem, lim: uint64(len(h.mem)) - metaOff - 7}
	}
	h.txFree = nil
	tx.readOnly = readOnly
	return tx
}

// releaseTx resets tx and keeps it for the next block.
func (h *Heap) releaseTx(tx *Tx) {
	if len(tx.order) > 4096 {
		return // a large block: let its buffers go
	}
	// Delete entry by entry: clear would cost the maps' capacity, which a
	// large block may have grown.
	for _, l := range tx.order {
		tx.spare = append(tx.spare, tx.lines[l])
		delete(tx.lines, l)
	}
	for _, p := range tx.frees {
		delete(tx.freed, p)
	}
	if len(tx.freed) != 0 {
		clear(tx.freed)
	}
	*tx = Tx{h: h, mem: tx.mem, lim: uint64(len(tx.mem)) - metaOff - 7, lines: tx.lines, freed: tx.freed, spare: tx.spare,
		order: tx.order[:0], fresh: tx.fresh[:0], dirty: tx.dirty[:0], frees: tx.frees[:0]}
	h.txFree = tx
}

func (h *Heap) corrupt(format string, args ...any) *CorruptError {
	return &CorruptError{File: h.name, Msg: fmt.Sprintf(format, args...)}
}

// Atomic runs fn as a failure-atomic block: after a crash at any point, either
// all of fn's writes are in the heap or none is. Atomic returns once the
// block's writes are durable. If fn returns an error or panics, nothing it
// wrote reaches the heap: Atomic returns the error (or re-panics). A
// *CorruptError panic (from reading a malformed heap) is returned as an error.
//
// Nested calls (Atomic called, directly or through a data type, inside fn)
// flatten into the outermost block: they run with the same Tx, and an error
// returned by a nested block rolls back the whole outermost block even if the
// outer fn ignores it.
func (h *Heap) Atomic(fn func(tx *Tx) error) (err error) {
	if tx := h.tx; tx != nil {
		if tx.readOnly {
			return errors.New("pmem: Atomic inside View")
		}
		if err := fn(tx); err != nil {
			if tx.err == nil {
				tx.err = err
			}
			return err
		}
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	tx := h.newTx(false)
	h.tx = tx
	defer func() {
		h.tx = nil
		h.releaseTx(tx)
		if r := recover(); r != nil {
			if ce, ok := r.(*CorruptError); ok {
				err = ce
				return
			}
			panic(r)
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if tx.err != nil {
		return tx.err
	}
	return tx.commit()
}

// View runs fn with a read-only Tx (writes and allocations panic). It is the
// cheap way to read the heap outside Atomic; a View inside Atomic reuses the
// open block and sees its writes.
func (h *Heap) View(fn func(tx *Tx) error) (err error) {
	if tx := h.tx; tx != nil {
		return fn(tx)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	tx := h.newTx(true)
	h.tx = tx
	defer func() {
		h.tx = nil
		h.releaseTx(tx)
		if r := recover(); r != nil {
			if ce, ok := r.(*CorruptError); ok {
				err = ce
				return
			}
			panic(r)
		}
	}()
	return fn(tx)
}

// Heap returns the heap the Tx belongs to.
func (tx *Tx) Heap() *Heap { return tx.h }

func (tx *Tx) check(off Ptr, n int) {
	h := tx.h
	if n < 0 || uint64(off) < metaOff || uint64(off) > h.hd.size || uint64(n) > h.hd.size-uint64(off) {
		panic(h.corrupt("access [%d,+%d) outside the heap", off, n))
	}
}

func (tx *Tx) writable() {
	if tx.readOnly {
		panic("pmem: write in a read-only View")
	}
}

// Read copies len(dst) bytes at off into dst.
func (tx *Tx) Read(off Ptr, dst []byte) {
	tx.check(off, len(dst))
	if len(tx.lines) == 0 {
		copy(dst, tx.h.mem[off:])
		return
	}
	o := uint64(off)
	for len(dst) > 0 {
		line := o &^ (LineSize - 1)
		k := min(uint64(len(dst)), line+LineSize-o)
		if l, ok := tx.lines[line]; ok {
			copy(dst[:k], l[o-line:])
		} else {
			copy(dst[:k], tx.h.mem[o:])
		}
		dst = dst[k:]
		o += k
	}
}

// Bytes returns the n bytes at off. The result may alias the mapping: it is
// valid until the block ends and must not be modified.
func (tx *Tx) Bytes(off Ptr, n int) []byte {
	tx.check(off, n)
	if len(tx.lines) == 0 {
		return tx.h.mem[off : uint64(off)+uint64(n) : uint64(off)+uint64(n)]
	}
	o := uint64(off)
	first, last := o&^(LineSize-1), (o+uint64(n)+LineSize-1)&^(LineSize-1)
	for l := first; l < last; l += LineSize {
		if _, ok := tx.lines[l]; ok {
			b := make([]byte, n)
			tx.Read(off, b)
			return b
		}
	}
	return tx.h.mem[off : o+uint64(n) : o+uint64(n)]
}

// U64 reads the little-endian word at off.
func (tx *Tx) U64(off Ptr) uint64 {
	// Fast path (inlined): no overlay, and off inside [metaOff, size-8].
	if uint64(off)-metaOff < tx.lim {
		return binary.LittleEndian.Uint64(tx.mem[off:])
	}
	return tx.u64(off)
}

func (tx *Tx) u64(off Ptr) uint64 {
	tx.check(off, 8)
	if len(tx.lines) != 0 {
		line := uint64(off) &^ (LineSize - 1)
		if l, ok := tx.lines[line]; ok && uint64(off)+8 <= line+LineSize {
			return binary.LittleEndian.Uint64(l[uint64(off)-line:])
		}
		var b [8]byte
		tx.Read(off, b[:])
		return binary.LittleEndian.Uint64(b[:])
	}
	return binary.LittleEndian.Uint64(tx.h.mem[off:])
}

// Ptr reads the pointer stored at off.
func (tx *Tx) Ptr(off Ptr) Ptr { return Ptr(tx.U64(off)) }

// SetU64 writes the little-endian word v at off.
func (tx *Tx) SetU64(off Ptr, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	tx.Write(off, b[:])
}

// SetPtr stores pointer p at off.
func (tx *Tx) SetPtr(off, p Ptr) { tx.SetU64(off, uint64(p)) }

// freshIndex reports whether [o, o+n) lies inside a block this Tx allocated.
func (tx *Tx) isFresh(o, n uint64) bool {
	if tx.haveBase && o >= tx.baseTop {
		return true
	}
	if len(tx.fresh) == 0 {
		return false
	}
	if i := tx.lastHit; i < len(tx.fresh) && o >= tx.fresh[i][0] && o+n <= tx.fresh[i][1] {
		return true
	}
	for i := len(tx.fresh) - 1; i >= 0; i-- {
		if f := tx.fresh[i]; o >= f[0] && o+n <= f[1] {
			tx.lastHit = i
			return true
		}
	}
	return false
}

// Write copies src to the heap at off, as part of the block.
func (tx *Tx) Write(off Ptr, src []byte) {
	tx.writable()
	tx.check(off, len(src))
	tx.write(uint64(off), src, tx.isFresh(uint64(off), uint64(len(src))))
}

func (tx *Tx) write(o uint64, src []byte, fresh bool) {
	if len(src) == 0 {
		return
	}
	if fresh {
		tx.dirty = append(tx.dirty, [2]uint64{o, o + uint64(len(src))})
	}
	mem := tx.h.mem
	for len(src) > 0 {
		line := o &^ (LineSize - 1)
		k := min(uint64(len(src)), line+LineSize-o)
		if l, ok := tx.lines[line]; ok {
			copy(l[o-line:], src[:k])
		} else if fresh {
			copy(mem[o:], src[:k])
		} else {
			if tx.lines == nil {
				tx.lines = make(map[uint64]*[LineSize]byte)
			}
			var l *[LineSize]byte
			if n := len(tx.spare); n > 0 {
				l, tx.spare = tx.spare[n-1], tx.spare[:n-1]
			} else {
				l = new([LineSize]byte)
			}
			copy(l[:], mem[line:line+LineSize])
			copy(l[o-line:], src[:k])
			tx.lines[line] = l
			tx.order = append(tx.order, line)
			tx.lim = 0 // reads must consult the overlay
		}
		src = src[k:]
		o += k
	}
}

// Redo log layout (at logOff): line 0 is the commit record
//
//	[0:8) logMagic  [8:16) seq  [16:24) n records  [24:28) crc32c of the body
//
// and from logOff+LineSize the body, n records of (offset u64, 64 bytes). The
// crc covers seq, n and the body, so a commit record whose body did not
// become durable is recognised and ignored.
const (
	logMagic    = 0x474f4c4f4445520a // "\nREDOLOG" little-endian-ish marker
	logRecSize  = 8 + LineSize
	logBodyOff  = logOff + LineSize
	logHdrBytes = 28
)

var errCrashAfterCommit = errors.New("pmem: simulated crash after the commit point")

// logCRC is the crc of a commit record: seqN is its bytes [8:24) (seq and
// n, as stored), body the records. Taking the stored bytes rather than the
// numbers keeps a commit free of allocations (a local array would escape
// into crc32).
func logCRC(seqN, body []byte) uint32 {
	c := crc32.Update(0, castagnoli, seqN)
	return crc32.Update(c, castagnoli, body)
}

func (tx *Tx) commit() error {
	h := tx.h
	if len(tx.frees) > 0 {
		for _, p := range tx.frees {
			tx.release(p)
		}
	}
	if len(tx.order) == 0 && len(tx.dirty) == 0 {
		return nil
	}
	n := uint64(len(tx.order))
	if logRecSize*n+LineSize > h.hd.logSize {
		return fmt.Errorf("%w: %d lines, room for %d", ErrTxTooLarge, n, (h.hd.logSize-LineSize)/logRecSize)
	}
	// 1. Fresh blocks written in place and the redo log body durable, then
	// the commit record.
	for _, d := range tx.dirty {
		h.dev.flush(int(d[0]), int(d[1]-d[0]))
	}
	body := h.mem[logBodyOff : logBodyOff+logRecSize*n]
	slices.Sort(tx.order)
	for i, line := range tx.order {
		r := body[i*logRecSize:]
		binary.LittleEndian.PutUint64(r, line)
		copy(r[8:logRecSize], tx.lines[line][:])
	}
	if !h.skipLogFlush {
		h.dev.flush(logBodyOff, len(body))
	}
	if len(tx.dirty) > 0 {
		// The commit record must not reach the medium before the fresh
		// blocks do (an eviction could carry it there early): fence first.
		// Without fresh blocks the crc guards the body and one fence does.
		h.dev.fence()
	}
	h.seq++
	hdr := h.mem[logOff : logOff+LineSize]
	binary.LittleEndian.PutUint64(hdr[0:], logMagic)
	binary.LittleEndian.PutUint64(hdr[8:], h.seq)
	binary.LittleEndian.PutUint64(hdr[16:], n)
	binary.LittleEndian.PutUint32(hdr[24:], logCRC(hdr[8:24], body))
	if !h.skipLogFlush {
		h.dev.flush(logOff, LineSize)
	}
	h.dev.fence() // commit point
	if h.crashAfterCommit {
		panic(errCrashAfterCommit)
	}
	// 2. Apply in place.
	mem := h.mem
	runStart, runEnd := uint64(0), uint64(0)
	for _, line := range tx.order {
		copy(mem[line:line+LineSize], tx.lines[line][:])
		if line != runEnd {
			if runEnd > runStart {
				h.dev.flush(int(runStart), int(runEnd-runStart))
			}
			runStart = line
		}
		runEnd = line + LineSize
	}
	if runEnd > runStart {
		h.dev.flush(int(runStart), int(runEnd-runStart))
	}
	h.dev.fence()
	// 3. Retire the log. No fence: replaying a retired block is harmless
	// until the next block's commit record, which overwrites this one, is
	// durable, and no in-place write happens before that.
	binary.LittleEndian.PutUint64(hdr[0:], 0)
	h.dev.flush(logOff, LineSize)
	return nil
}

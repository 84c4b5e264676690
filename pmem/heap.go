package pmem

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sync"

	mmap "github.com/edsrzf/mmap-go"
)

// Ptr is the offset of a block's payload from the start of the heap. Persistent
// objects refer to each other by Ptr, never by Go pointer, so a heap means the
// same thing wherever it is mapped. The zero Ptr is nil.
type Ptr uint64

// Version is the heap layout version this build writes and the only one it
// opens.
const Version = 1

// LineSize is the cache-line size the heap assumes: the unit of the redo log
// and of the crash simulator's persistence.
const LineSize = 64

const (
	pageSize     = 4096
	headerSize   = pageSize
	metaOff      = headerSize // allocator metadata and roots
	metaSize     = 3 * pageSize
	logOff       = metaOff + metaSize
	minLogSize   = 16 * pageSize
	magic        = "BLSMPMEM"
	maxRootName  = 48
	numRoots     = 64
	rootSlotSize = 64
	rootsOff     = metaOff + 4096 // after the allocator lines
	// allocator metadata at metaOff: word 0 = top, word 1 = reserved, then
	// free-list heads starting at freeHeadsOff, one word per size class.
	topOff       = metaOff
	freeHeadsOff = metaOff + LineSize
)

var (
	// ErrCorrupt is wrapped by every error that reports a heap whose bytes do
	// not describe a valid heap (bad magic, checksum, layout or block graph).
	ErrCorrupt = errors.New("corrupt heap")
	// ErrVersion is wrapped by the error Open returns for a heap written by a
	// layout version other than Version.
	ErrVersion = errors.New("unsupported heap version")
	// ErrOutOfMemory is returned by Tx.Alloc when no free block of the
	// requested class exists and the heap has no room left to carve one.
	ErrOutOfMemory = errors.New("pmem: heap out of memory")
	// ErrTxTooLarge is returned by Atomic when a block modified more cache
	// lines than the redo log can hold; the block is rolled back.
	ErrTxTooLarge = errors.New("pmem: atomic block too large for the redo log")
	// ErrClosed is returned by operations on a closed heap.
	ErrClosed = errors.New("pmem: heap closed")
)

// CorruptError reports an access outside the heap or a malformed persistent
// object found while reading the heap. Tx methods panic with a *CorruptError;
// Atomic and View turn that panic into a returned error (wrapping ErrCorrupt)
// after rolling the block back.
type CorruptError struct {
	File string // heap file name (or "sim" / "memory")
	Msg  string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("pmem: %s: %s: %s", e.File, ErrCorrupt, e.Msg)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// header is the decoded first page of a heap.
type header struct {
	size    uint64 // total bytes, equal to the file length
	logSize uint64 // bytes of the redo log area starting at logOff
	dataOff uint64 // first block
}

func (hd header) encode(b []byte) {
	clear(b[:headerSize])
	copy(b[0:8], magic)
	binary.LittleEndian.PutUint32(b[8:], Version)
	binary.LittleEndian.PutUint64(b[16:], hd.size)
	binary.LittleEndian.PutUint64(b[24:], hd.logSize)
	binary.LittleEndian.PutUint64(b[32:], hd.dataOff)
	binary.LittleEndian.PutUint32(b[40:], crc32.Checksum(b[0:40], castagnoli))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// decodeHeader validates the header of a heap image of n bytes named name.
func decodeHeader(name string, b []byte) (header, error) {
	bad := func(format string, args ...any) (header, error) {
		return header{}, fmt.Errorf("pmem: %s: %w: %s", name, ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if len(b) < logOff+minLogSize+pageSize {
		return bad("file of %d bytes is too small to be a heap", len(b))
	}
	if string(b[0:8]) != magic {
		return bad("not a pmem heap (bad magic %q)", b[0:8])
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != Version {
		return header{}, fmt.Errorf("pmem: %s: %w: heap version %d, this build opens version %d", name, ErrVersion, v, Version)
	}
	if got, want := binary.LittleEndian.Uint32(b[40:]), crc32.Checksum(b[0:40], castagnoli); got != want {
		return bad("header checksum mismatch (stored %#x, computed %#x)", got, want)
	}
	hd := header{
		size:    binary.LittleEndian.Uint64(b[16:]),
		logSize: binary.LittleEndian.Uint64(b[24:]),
		dataOff: binary.LittleEndian.Uint64(b[32:]),
	}
	if hd.size != uint64(len(b)) {
		return bad("header says %d bytes, file has %d", hd.size, len(b))
	}
	if hd.logSize < minLogSize || hd.logSize%pageSize != 0 || hd.logSize > hd.size {
		return bad("bad log size %d", hd.logSize)
	}
	if hd.dataOff != logOff+hd.logSize || hd.dataOff+pageSize > hd.size {
		return bad("bad data offset %d", hd.dataOff)
	}
	return hd, nil
}

// Options tune Create. The zero value (or nil) picks defaults.
type Options struct {
	// LogSize is the size in bytes of the redo log area, which bounds how
	// many cache lines one atomic block may modify outside freshly allocated
	// blocks (LogSize/72 lines). Default: size/64, at least 64 KiB, at most
	// 16 MiB. Rounded up to a page.
	LogSize int64
	// FlushMode selects how flushes and fences reach the medium (see
	// FlushMode); it applies to Create and OpenWith of a file heap and is
	// not stored in the heap. Default FlushAuto.
	FlushMode FlushMode
}

func (o *Options) logSize(size int64) int64 {
	var n int64
	if o != nil && o.LogSize > 0 {
		n = o.LogSize
	} else {
		n = min(max(size/64, 64<<10), 16<<20)
	}
	n = max(n, minLogSize)
	return (n + pageSize - 1) &^ (pageSize - 1)
}

// device is where the heap's bytes persist: flush starts writing back a range
// of the mapping, fence waits until every range flushed before it is durable.
type device interface {
	flush(off, n int)
	fence()
	close() error
}

// Heap is a persistent heap: a memory-mapped file (or a simulated or volatile
// region) holding blocks allocated by size class, named roots and a redo log.
// A Heap is not safe for concurrent use by several goroutines; callers
// serialize access (the pmem/kv store does, with a mutex).
type Heap struct {
	name string
	mem  []byte
	dev  device
	hd   header
	mu   sync.Mutex
	tx   *Tx // the open atomic block, if any
	// txFree is a finished Tx kept for reuse by the next block.
	txFree *Tx
	seq    uint64
	// Recovery describes what the last Open did.
	recovery RecoveryStats
	closed   bool

	// test hooks
	skipLogFlush     bool // sabotage: the redo log is written but never flushed
	crashAfterCommit bool // benchmark: die right after the commit point
}

// Name returns the heap's file name ("sim" or "memory" for heaps that are not
// files).
func (h *Heap) Name() string { return h.name }

// Size returns the heap's total size in bytes.
func (h *Heap) Size() int64 { return int64(h.hd.size) }

// Recovery returns what the Open that produced h did: whether it replayed a
// committed block, how many blocks it found and how many it freed.
func (h *Heap) Recovery() RecoveryStats { return h.recovery }

// Create makes a new heap file of size bytes at path (which must not exist),
// formats it and returns it open. The file is memory-mapped shared; opts'
// FlushMode picks how Flush and Fence reach the medium (msync, or cache-line
// write-back instructions; see FlushMode).
func Create(path string, size int64, opts *Options) (*Heap, error) {
	ls := opts.logSize(size)
	if size < logOff+ls+16*pageSize {
		return nil, fmt.Errorf("pmem: %s: size %d too small (need at least %d)", path, size, logOff+ls+16*pageSize)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pmem: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("pmem: %s: %w", path, err)
	}
	dev, mem, err := mapFile(f, opts.flushMode())
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("pmem: %s: %w", path, err)
	}
	h := &Heap{name: path, mem: mem, dev: dev}
	h.format(uint64(size), uint64(ls))
	return h, nil
}

// Open maps the heap file at path and recovers it: it finishes the atomic
// block that was interrupted after its commit point (or drops one that was
// not), then frees every block unreachable from the roots. A file that is not
// a heap, has a corrupt header or block graph, or was written by another
// layout version is refused with an error naming the file (wrapping ErrCorrupt
// or ErrVersion). The heap runs in FlushAuto mode; see OpenWith.
func Open(path string) (*Heap, error) { return OpenWith(path, nil) }

// OpenWith is Open with options; only opts.FlushMode applies (the layout is
// the one the heap was created with).
func OpenWith(path string, opts *Options) (*Heap, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("pmem: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pmem: %s: %w", path, err)
	}
	if st.Size() < logOff+minLogSize+pageSize {
		f.Close()
		return nil, fmt.Errorf("pmem: %s: %w: file of %d bytes is too small to be a heap", path, ErrCorrupt, st.Size())
	}
	dev, mem, err := mapFile(f, opts.flushMode())
	if err != nil {
		return nil, fmt.Errorf("pmem: %s: %w", path, err)
	}
	h, err := openMem(path, mem, dev)
	if err != nil {
		dev.close()
		return nil, err
	}
	return h, nil
}

// NewVolatile returns a heap of size bytes in ordinary memory, with flushes
// and fences that do nothing. It has the heap's full behaviour except
// durability; the in-memory comparisons and tests use it.
func NewVolatile(size int64, opts *Options) (*Heap, error) {
	ls := opts.logSize(size)
	if size < logOff+ls+16*pageSize {
		return nil, fmt.Errorf("pmem: memory: size %d too small", size)
	}
	h := &Heap{name: "memory", mem: make([]byte, size), dev: nopDevice{}}
	h.format(uint64(size), uint64(ls))
	return h, nil
}

type nopDevice struct{}

func (nopDevice) flush(int, int) {}
func (nopDevice) fence()         {}
func (nopDevice) close() error   { return nil }

// format writes an empty heap: log and metadata zeroed and durable first, the
// header (which makes the file a heap) last.
func (h *Heap) format(size, logSize uint64) {
	h.hd = header{size: size, logSize: logSize, dataOff: logOff + logSize}
	clear(h.mem[headerSize:h.hd.dataOff])
	binary.LittleEndian.PutUint64(h.mem[topOff:], h.hd.dataOff)
	h.dev.flush(headerSize, int(h.hd.dataOff-headerSize))
	h.dev.fence()
	h.hd.encode(h.mem)
	h.dev.flush(0, headerSize)
	h.dev.fence()
}

// openMem validates, replays and collects a heap image.
func openMem(name string, mem []byte, dev device) (*Heap, error) {
	hd, err := decodeHeader(name, mem)
	if err != nil {
		return nil, err
	}
	h := &Heap{name: name, mem: mem, dev: dev, hd: hd}
	if err := h.recover(); err != nil {
		return nil, err
	}
	return h, nil
}

// Close flushes and unmaps the heap. The heap must not be used afterwards.
func (h *Heap) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	h.closed = true
	h.dev.fence()
	return h.dev.close()
}

// Flush starts writing back the bytes [p, p+n) of the heap. It has no effect
// on durability until the next Fence. Atomic blocks flush and fence by
// themselves; Flush is for code that writes the mapping outside them.
func (h *Heap) Flush(p Ptr, n int) {
	if uint64(p) > h.hd.size || uint64(n) > h.hd.size-uint64(p) {
		panic(&CorruptError{File: h.name, Msg: fmt.Sprintf("flush of [%d,+%d) outside the heap", p, n)})
	}
	h.dev.flush(int(p), n)
}

// Fence returns when every range flushed before it is durable.
func (h *Heap) Fence() { h.dev.fence() }

// fileDevice is a shared file mapping. In FlushMsync mode its flushes are
// msync calls, batched by page and issued at the fence; in FlushCLWB mode a
// flush writes back each cache line of the range and a fence is an SFENCE.
type fileDevice struct {
	f        *os.File
	m        []byte
	unmap    func() error
	flushAll func() error // the whole mapping to the file (mmap-go), where msync is missing
	mode     FlushMode    // FlushMsync or FlushCLWB
	pending  [][2]int     // msync: page-aligned [start, end) ranges, merged when adjacent
}

// mapShared maps f with mmap-go; the device's mode is left for the caller to
// set. It closes f on failure.
func mapShared(f *os.File) (*fileDevice, []byte, error) {
	m, err := mmap.Map(f, mmap.RDWR, 0)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return &fileDevice{f: f, m: []byte(m), unmap: m.Unmap, flushAll: m.Flush}, []byte(m), nil
}

func (d *fileDevice) flush(off, n int) {
	if n <= 0 {
		return
	}
	if d.mode == FlushCLWB {
		flushLinesOf(d.m, off, n)
		return
	}
	a := off &^ (pageSize - 1)
	b := min((off+n+pageSize-1)&^(pageSize-1), len(d.m))
	for i := len(d.pending) - 1; i >= 0 && i >= len(d.pending)-4; i-- {
		r := &d.pending[i]
		if a <= r[1] && b >= r[0] {
			r[0], r[1] = min(r[0], a), max(r[1], b)
			return
		}
	}
	d.pending = append(d.pending, [2]int{a, b})
}

func (d *fileDevice) fence() {
	if d.mode == FlushCLWB {
		sfence()
		return
	}
	if len(d.pending) == 0 {
		return
	}
	// One msync over the hull of the flushed ranges: on a disk-backed file
	// each msync call ends in a journal commit and a device flush, whatever
	// its range, while the pages between the ranges that are not dirty cost
	// nothing. Dirty pages in between may become durable early, as the
	// kernel's own writeback may make any page at any time.
	a, b := d.pending[0][0], d.pending[0][1]
	for _, r := range d.pending[1:] {
		a, b = min(a, r[0]), max(b, r[1])
	}
	if err := d.msync(a, b); err != nil {
		panic(fmt.Sprintf("pmem: msync: %v", err))
	}
	d.pending = d.pending[:0]
}

func (d *fileDevice) close() error {
	err := d.unmap()
	if err2 := d.f.Close(); err == nil {
		err = err2
	}
	return err
}

package pmem

import (
	"fmt"
	"os"
	"unsafe"
)

// FlushMode selects how a file heap makes its writes durable: how Flush and
// Fence (and the flushes and fences of atomic blocks and recovery) are carried
// out. The heap issues the same flushes and fences in every mode; only the
// device behind them differs, so the crash-consistency argument (and the crash
// simulator, which models flush and fence per cache line) is the same for all.
//
// What a mode guarantees depends on the medium the file lives on:
//
//	mode       medium                    Fence returns when the data ...
//	---------  ------------------------  ---------------------------------------
//	FlushMsync disk-backed file system   is on the device (msync MS_SYNC of the
//	                                     flushed pages): survives a power loss
//	FlushMsync DAX (persistent memory)   is in persistent memory (the kernel
//	                                     writes back the caches): survives a
//	                                     power loss
//	FlushMsync tmpfs (/dev/shm)          is in the shared page cache, as it was
//	                                     before the msync: survives the process
//	                                     (kill -9), not an OS crash or power loss
//	FlushCLWB  DAX mapped with MAP_SYNC  is in persistent memory (CLWB /
//	                                     CLFLUSHOPT / CLFLUSH per 64-byte line,
//	                                     then SFENCE; with ADR the memory
//	                                     controller's queues are persistent):
//	                                     survives a power loss — J-NVM's model
//	FlushCLWB  tmpfs (/dev/shm)          as FlushMsync on tmpfs: survives the
//	                                     process, not a power loss
//	FlushCLWB  disk-backed file system   is in the page cache only (the
//	                                     instructions write CPU caches back to
//	                                     DRAM, never to the disk): survives the
//	                                     process, not an OS crash or power loss.
//	                                     FlushAuto never picks this.
//
// In every mode a heap survives the death of its process at any point (the
// mapping is shared; stores reach the page cache in program order), and the
// redo log makes every atomic block all or nothing. On tmpfs nothing survives
// a power loss whatever the mode, so the two modes are equally durable there
// and FlushAuto picks the one without system calls; J-NVM likewise compared
// its back ends on one medium.
type FlushMode uint8

const (
	// FlushAuto (the zero value) picks FlushCLWB when the CPU has a
	// cache-line write-back instruction and the file is on tmpfs or on a DAX
	// file system that accepts a MAP_SYNC mapping (where msync adds nothing),
	// and FlushMsync otherwise (and on architectures other than amd64).
	FlushAuto FlushMode = iota
	// FlushMsync makes Flush record the pages of the range and Fence msync
	// them (MS_SYNC): two or three system calls per atomic block.
	FlushMsync
	// FlushCLWB makes Flush write back every 64-byte line of the range with
	// CLWB (or CLFLUSHOPT, or CLFLUSH, the best the CPU has; see
	// CacheLineFlush) and Fence execute SFENCE: no system call. Opening a heap
	// with FlushCLWB fails on a CPU or architecture without these
	// instructions. On a file that is neither on tmpfs nor DAX-mapped it only
	// protects against process crashes (see the table above).
	FlushCLWB
)

// String returns "auto", "msync" or "clwb".
func (m FlushMode) String() string {
	switch m {
	case FlushAuto:
		return "auto"
	case FlushMsync:
		return "msync"
	case FlushCLWB:
		return "clwb"
	}
	return fmt.Sprintf("FlushMode(%d)", uint8(m))
}

// ParseFlushMode parses "auto", "msync" or "clwb".
func ParseFlushMode(s string) (FlushMode, error) {
	for _, m := range []FlushMode{FlushAuto, FlushMsync, FlushCLWB} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("pmem: unknown flush mode %q (auto, msync or clwb)", s)
}

// CacheLineFlush names the cache-line write-back instruction FlushCLWB uses on
// this CPU: "clwb", "clflushopt" or "clflush"; "" if there is none (or the
// architecture is not amd64), in which case FlushCLWB is unavailable.
func CacheLineFlush() string { return lineFlushName }

// FlushMode returns the mode the heap runs in: FlushMsync or FlushCLWB for a
// file heap (never FlushAuto: Create and Open resolve it), FlushAuto for
// simulated and volatile heaps, whose flushes are modelled or free.
func (h *Heap) FlushMode() FlushMode {
	if d, ok := h.dev.(*fileDevice); ok {
		return d.mode
	}
	return FlushAuto
}

func (o *Options) flushMode() FlushMode {
	if o == nil {
		return FlushAuto
	}
	return o.FlushMode
}

// mapFile maps f shared and read-write, in the requested mode, resolving
// FlushAuto. It closes f on failure.
func mapFile(f *os.File, want FlushMode) (*fileDevice, []byte, error) {
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, nil, err
	}
	if want > FlushCLWB {
		f.Close()
		return nil, nil, fmt.Errorf("unknown flush mode %d", want)
	}
	if want == FlushCLWB && lineFlushName == "" {
		f.Close()
		return nil, nil, fmt.Errorf("flush mode clwb: this CPU (or architecture) has no cache-line write-back instruction")
	}
	if want != FlushMsync && lineFlushName != "" {
		// On a DAX file system a MAP_SYNC mapping keeps the file system's
		// metadata in step with page faults, so cache-line write-back alone
		// is durable; the kernel refuses MAP_SYNC on any other file.
		if m, unmap, err := mapSync(f); err == nil {
			return &fileDevice{f: f, m: m, unmap: unmap, mode: FlushCLWB}, m, nil
		}
		if want == FlushAuto && !onTmpfs(f) {
			want = FlushMsync
		} else {
			want = FlushCLWB
		}
	} else {
		want = FlushMsync
	}
	d, m, err := mapShared(f)
	if err != nil {
		return nil, nil, err
	}
	d.mode = want
	return d, m, nil
}

// flushLinesOf writes back every cache line of m[off:off+n].
func flushLinesOf(m []byte, off, n int) {
	if n <= 0 {
		return
	}
	a := off &^ (LineSize - 1)
	end := off + n
	flushLines(unsafe.Pointer(&m[a]), uintptr((end-a+LineSize-1)/LineSize))
}

package pmem

import "unsafe"

// cpuid executes CPUID with the given leaf and subleaf.
func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

// clwbLines, clflushoptLines and clflushLines write back n cache lines
// starting at the line-aligned address p, one instruction per line.
//
//go:noescape
func clwbLines(p unsafe.Pointer, n uintptr)

//go:noescape
func clflushoptLines(p unsafe.Pointer, n uintptr)

//go:noescape
func clflushLines(p unsafe.Pointer, n uintptr)

// sfence orders every earlier store and cache-line write-back before any
// later store.
func sfence()

var (
	lineFlushName string
	lineFlushFn   func(unsafe.Pointer, uintptr)
)

func init() {
	maxLeaf, _, _, _ := cpuid(0, 0)
	_, _, _, edx1 := cpuid(1, 0)
	var ebx7 uint32
	if maxLeaf >= 7 {
		_, ebx7, _, _ = cpuid(7, 0)
	}
	switch {
	case ebx7&(1<<24) != 0:
		lineFlushName, lineFlushFn = "clwb", clwbLines
	case ebx7&(1<<23) != 0:
		lineFlushName, lineFlushFn = "clflushopt", clflushoptLines
	case edx1&(1<<19) != 0:
		lineFlushName, lineFlushFn = "clflush", clflushLines
	}
}

// flushLines writes back n cache lines from p with the best instruction the
// CPU has.
func flushLines(p unsafe.Pointer, n uintptr) { lineFlushFn(p, n) }

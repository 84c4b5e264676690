//go:build !amd64

package pmem

import "unsafe"

// Other architectures have no cache-line write-back implementation here:
// FlushAuto resolves to FlushMsync and FlushCLWB is refused at open.
const lineFlushName = ""

func flushLines(unsafe.Pointer, uintptr) {
	panic("pmem: no cache-line write-back on this architecture")
}

func sfence() {}

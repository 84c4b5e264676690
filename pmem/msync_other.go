//go:build !unix

package pmem

// msync writes the mapped bytes [a, b) through to the file and waits. Without
// msync(2) it flushes the whole mapping (mmap-go: FlushViewOfFile and
// FlushFileBuffers on Windows), a superset of the range.
func (d *fileDevice) msync(a, b int) error { return d.flushAll() }

package client

import (
	"io"
	"net"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// The writer's two buffers, the one callers append to (out) and the spare
// it swaps in while it writes the other, never share an array, whatever
// the sizes written: if they did, calls appended during a write would
// overwrite the frames being written. A write of more than 1 MiB (whose
// buffer is dropped, not kept as the spare) left them sharing one.
func TestWriterNeverSharesItsBuffers(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	go io.Copy(io.Discard, b)
	c := &conn{nc: a, w: a, pending: map[uint64]chan result{}, stop: make(chan struct{})}
	shared := func() bool {
		if cap(c.out) == 0 || cap(c.spare) == 0 {
			return false
		}
		return unsafe.SliceData(c.out[:1]) == unsafe.SliceData(c.spare[:1])
	}
	for i, size := range []int{10, 10, 2 << 20, 10, 10, 3 << 20, 3 << 20, 10} {
		c.wmu.Lock()
		c.out = append(c.out, make([]byte, size)...)
		c.flushLocked()
		c.wmu.Lock()
		require.False(t, shared(), "after write %d (%d bytes), out and spare share an array", i, size)
		c.wmu.Unlock()
	}
}

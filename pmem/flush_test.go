package pmem

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// heapDirs are the directories the flush-mode tests create heaps in: the
// test's temporary directory and, when present, /dev/shm (tmpfs).
func heapDirs(t *testing.T) [][2]string {
	dirs := [][2]string{{"tempdir", t.TempDir()}}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "pmem-test-")
		require.NoError(t, err)
		t.Cleanup(func() { os.RemoveAll(d) })
		dirs = append(dirs, [2]string{"shm", d})
	}
	return dirs
}

// TestFlushModes creates, fills, closes and reopens a file heap in every
// flush mode (clwb only where the CPU has it), on the temporary directory
// and on tmpfs, and checks the mode each one resolved to.
func TestFlushModes(t *testing.T) {
	for _, d := range heapDirs(t) {
		dir := d[1]
		for _, mode := range []FlushMode{FlushAuto, FlushMsync, FlushCLWB} {
			t.Run(d[0]+"/"+mode.String(), func(t *testing.T) {
				path := filepath.Join(dir, "heap-"+mode.String())
				h, err := Create(path, 2<<20, &Options{FlushMode: mode})
				if mode == FlushCLWB && CacheLineFlush() == "" {
					require.ErrorContains(t, err, "no cache-line write-back")
					return
				}
				require.NoError(t, err)
				got := h.FlushMode()
				switch {
				case mode != FlushAuto:
					require.Equal(t, mode, got)
				case CacheLineFlush() == "":
					require.Equal(t, FlushMsync, got)
				default:
					f, err := os.Open(path)
					require.NoError(t, err)
					if onTmpfs(f) {
						require.Equal(t, FlushCLWB, got, "auto on tmpfs")
					} else {
						require.NotEqual(t, FlushAuto, got)
					}
					f.Close()
				}
				require.NoError(t, h.Atomic(func(tx *Tx) error {
					m, err := NewSortedMap(tx, false)
					if err != nil {
						return err
					}
					for i := range 200 {
						if _, _, err := m.Put(tx, fmt.Appendf(nil, "k%03d", i), uint64(i)); err != nil {
							return err
						}
					}
					return tx.SetRoot("m", m.P)
				}))
				for i := range 50 {
					require.NoError(t, h.Atomic(func(tx *Tx) error {
						_, _, err := SortedMap{tx.Root("m")}.Put(tx, fmt.Appendf(nil, "k%03d", i), uint64(1000+i))
						return err
					}))
				}
				require.NoError(t, h.Close())
				h, err = OpenWith(path, &Options{FlushMode: mode})
				require.NoError(t, err)
				defer h.Close()
				_, err = h.Check()
				require.NoError(t, err)
				require.NoError(t, h.View(func(tx *Tx) error {
					m := SortedMap{tx.Root("m")}
					require.Equal(t, 200, m.Len(tx))
					v, ok := m.Get(tx, []byte("k010"))
					require.True(t, ok)
					require.Equal(t, uint64(1010), v)
					return nil
				}))
			})
		}
	}
}

// TestFlushLines runs the cache-line write-back over unaligned ranges of
// ordinary memory: every line of the range is written back (the
// instructions fault on an unmapped address, so a range computed past the
// end would crash the test).
func TestFlushLines(t *testing.T) {
	if CacheLineFlush() == "" {
		t.Skip("no cache-line write-back instruction")
	}
	mem := make([]byte, 64*LineSize+LineSize)
	off := LineSize - int(uintptr(unsafe.Pointer(&mem[0]))%LineSize)
	buf := mem[off : off+64*LineSize]
	for _, r := range [][2]int{{0, 1}, {0, 64}, {63, 2}, {1, 4095}, {100, 1000}, {4095, 1}, {0, 4096}, {5, 0}} {
		flushLinesOf(buf, r[0], r[1])
	}
	sfence()
}

func TestParseFlushMode(t *testing.T) {
	for _, m := range []FlushMode{FlushAuto, FlushMsync, FlushCLWB} {
		got, err := ParseFlushMode(m.String())
		require.NoError(t, err)
		require.Equal(t, m, got)
	}
	_, err := ParseFlushMode("fsync")
	require.Error(t, err)
}

// TestOpenRefusesAHeapInUse opens a heap file twice: the second open fails
// with ErrInUse until the first heap is closed.
func TestOpenRefusesAHeapInUse(t *testing.T) {
	if !lockSupported {
		t.Skip("no file locks on this system")
	}
	path := filepath.Join(t.TempDir(), "heap")
	h, err := Create(path, 1<<20, nil)
	require.NoError(t, err)
	_, err = Open(path)
	require.ErrorIs(t, err, ErrInUse)
	require.ErrorContains(t, err, path)
	require.NoError(t, h.Close())
	h, err = Open(path)
	require.NoError(t, err)
	require.NoError(t, h.Close())
}

//go:build linux

package pmem

import (
	"os"

	"golang.org/x/sys/unix"
)

// onTmpfs reports whether f lives on tmpfs (/dev/shm and the like), where the
// page cache is the medium and msync has nothing to write back.
func onTmpfs(f *os.File) bool {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return false
	}
	return st.Type == unix.TMPFS_MAGIC
}

package pmem

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapSync maps f shared with MAP_SYNC, which the kernel accepts only for a
// file on a DAX file system: page faults then commit the file system's
// metadata, so flushing CPU cache lines alone makes data durable.
func mapSync(f *os.File) ([]byte, func() error, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED_VALIDATE|unix.MAP_SYNC)
	if err != nil {
		return nil, nil, err
	}
	return m, func() error { return unix.Munmap(m) }, nil
}

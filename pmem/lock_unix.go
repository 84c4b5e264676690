//go:build unix

package pmem

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// ErrInUse is wrapped by the error Create and Open return for a heap file
// that another open heap (in this process or another) holds.
var ErrInUse = errors.New("heap is in use by another process")

const lockSupported = true

// lockFile takes an exclusive advisory lock on f, held until f is closed,
// so that two processes never map one heap for writing.
func lockFile(f *os.File) error {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return ErrInUse
		}
		return err
	}
	return nil
}

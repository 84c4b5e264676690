//go:build unix

package pmem

import "golang.org/x/sys/unix"

// msync writes the mapped bytes [a, b) through to the file and waits.
func (d *fileDevice) msync(a, b int) error { return unix.Msync(d.m[a:b], unix.MS_SYNC) }

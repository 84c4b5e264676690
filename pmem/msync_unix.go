//go:build unix

package pmem

import "golang.org/x/sys/unix"

func msync(b []byte) error { return unix.Msync(b, unix.MS_SYNC) }

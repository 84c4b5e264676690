//go:build !unix || freebsd || dragonfly

package kv

// oDSync is 0 where the syscall package lacks O_DSYNC (off unix, and on
// FreeBSD and DragonFly): the file store then syncs the file after each
// write.
const oDSync = 0

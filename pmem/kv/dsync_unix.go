//go:build unix && !freebsd && !dragonfly

package kv

import "syscall"

// oDSync makes every write to the file store's data file synchronous.
const oDSync = syscall.O_DSYNC

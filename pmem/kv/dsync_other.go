//go:build !unix

package kv

// oDSync is 0 where O_DSYNC is missing: the file store then syncs the file
// after each write.
const oDSync = 0

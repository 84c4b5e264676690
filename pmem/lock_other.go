//go:build !unix

package pmem

import (
	"errors"
	"os"
)

// ErrInUse is wrapped by the error Create and Open return for a heap file
// that another open heap holds (only detected on Unix).
var ErrInUse = errors.New("heap is in use by another process")

const lockSupported = false

func lockFile(*os.File) error { return nil }

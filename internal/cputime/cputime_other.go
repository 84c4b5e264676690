//go:build !unix

package cputime

import "time"

// Split returns 0, 0: this system has no getrusage, so the CPU time the
// process has used is not known.
func Split() (user, sys time.Duration) { return 0, 0 }

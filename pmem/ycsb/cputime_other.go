//go:build !unix

package ycsb

import "time"

// ProcessCPU returns 0: this system does not say how much CPU time the
// process has used.
func ProcessCPU() time.Duration { return 0 }

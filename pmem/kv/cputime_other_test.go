//go:build !unix

package kv

import "time"

// processCPU is 0 where CPU time is not measured.
func processCPU() time.Duration { return 0 }

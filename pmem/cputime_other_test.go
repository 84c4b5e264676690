//go:build !unix

package pmem

import "time"

// cpuTime is zero where getrusage(2) is missing: the benchmark's CPU metric
// then reads 0.
func cpuTime() time.Duration { return 0 }

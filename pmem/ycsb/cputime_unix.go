//go:build unix

package ycsb

import (
	"syscall"
	"time"
)

// ProcessCPU returns the CPU time (user plus system) the process has used
// so far (0 if the system does not say).
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

//go:build unix

package cputime

import (
	"syscall"
	"time"
)

// Split returns the user and the system CPU time the process has used so
// far, every thread included; 0, 0 where the system does not say.
func Split() (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

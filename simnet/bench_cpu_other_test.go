//go:build !unix

package simnet

import "time"

// cpuTimes is not measured on this platform.
func cpuTimes() (user, sys time.Duration) { return 0, 0 }

// Package cputime reads the CPU time this process has used, for the
// benchmarks that report CPU time per operation.
package cputime

import "time"

// Process returns the user plus system CPU time the process has used so
// far, every thread included; 0 where the system does not say.
func Process() time.Duration {
	user, sys := Split()
	return user + sys
}

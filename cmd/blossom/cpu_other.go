//go:build !unix

package main

import "time"

// selfCPU returns 0: this system has no getrusage. The benchmarks that
// read it also read the server's CPU time from /proc (procCPU), which
// fails here, so they report no CPU time per operation ("-").
func selfCPU() time.Duration { return 0 }

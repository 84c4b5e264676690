//go:build !unix

package ycsb

import "time"

func ProcessCPU() time.Duration { return 0 }

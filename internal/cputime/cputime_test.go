package cputime_test

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/cputime"
)

// Work done by this process shows in its CPU time.
func TestProcessCountsThisProcessesWork(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("no getrusage here")
	}
	before := cputime.Process()
	x := uint64(1)
	for i := 0; cputime.Process() == before; i++ {
		require.Less(t, i, 1<<20, "CPU time did not grow after %d rounds of work", i)
		for j := 0; j < 1000; j++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	runtime.KeepAlive(x)
	user, sys := cputime.Split()
	require.Greater(t, user+sys, before)
	require.Positive(t, user)
}

//go:build failpoint

package atlas_test

import (
	"testing"

	"github.com/pingcap/failpoint"
	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/simnet/simtest"
)

const fpPrefix = "github.com/blossom-dso/blossom/protocols/atlas/"

// sabotage enables the failpoint name for the duration of the test. This
// file is only built with the failpoint tag, by `make test-sabotage`, whose
// build rewrites the markers; elsewhere they are inert.
func sabotage(t *testing.T, name string) {
	t.Helper()
	require.NoError(t, failpoint.Enable(fpPrefix+name, "return(true)"))
	t.Cleanup(func() { require.NoError(t, failpoint.Disable(fpPrefix+name)) })
}

// TestSabotageFastThresholdOneLessIsCaught plants a fast path that needs
// each dependency reported by f−1 fast-quorum members instead of f (f = 2):
// a recovery without the coordinator may then miss a dependency of a
// command committed on the fast path, and the sweep must find a seed whose
// history the checks reject.
func TestSabotageFastThresholdOneLessIsCaught(t *testing.T) {
	sabotage(t, "fastThresholdOneLess")
	seed, err := simtest.FirstViolation(sweepConfig(2), 1, 2000)
	require.Error(t, err, "the sweep missed the planted fast-path bug")
	require.NotErrorIs(t, err, simtest.ErrNoViolation)
	t.Logf("seed %d caught the planted bug: %v", seed, err)
}

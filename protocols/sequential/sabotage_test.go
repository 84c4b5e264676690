//go:build failpoint

package sequential_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/failpoints"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// TestSabotageReadAnywhereIsCaught plants replicas that serve every read
// locally, also that of a client arriving from another replica, whose
// state may be behind what the client wrote or read there: the
// sequential-consistency check must catch a stale read in the sweep.
func TestSabotageReadAnywhereIsCaught(t *testing.T) {
	failpoints.Enable(t, "protocols/sequential", "sequentialReadAnywhere")
	seed, err := simtest.FirstViolation(sweepConfig(3), 1, 100)
	require.Error(t, err, "the sweep missed the planted stale read")
	require.NotErrorIs(t, err, simtest.ErrNoViolation)
	require.ErrorContains(t, err, "contract violated")
	t.Logf("seed %d caught the planted bug: %v", seed, err)
}

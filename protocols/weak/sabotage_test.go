//go:build failpoint

package weak_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/failpoints"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// TestSabotageApplyStaleIsCaught plants replicas whose merge executes a
// remote update even when it is arbitrated before the one the key holds,
// losing the newer update: the weak-contract check (convergence, lost
// updates, monotonic reads) must catch it in the sweep.
func TestSabotageApplyStaleIsCaught(t *testing.T) {
	failpoints.Enable(t, "protocols/weak", "weakApplyStale")
	seed, err := simtest.FirstViolation(sweepConfig(3), 1, 100)
	require.Error(t, err, "the sweep missed the planted lost update")
	require.NotErrorIs(t, err, simtest.ErrNoViolation)
	require.ErrorContains(t, err, "contract violated")
	t.Logf("seed %d caught the planted bug: %v", seed, err)
}

// TestSabotageMergeSkipRemoteIsCaught plants merge replicas that leave out
// the updates of the last peer: the Merge check (every live node executed
// the same updates, every acknowledged one) must catch it in the sweep.
func TestSabotageMergeSkipRemoteIsCaught(t *testing.T) {
	failpoints.Enable(t, "protocols/weak", "weakMergeSkipRemote")
	cfg := sweepConfig(3)
	cfg.Protocol = "weak-merge"
	seed, err := simtest.FirstViolation(cfg, 1, 100)
	require.Error(t, err, "the sweep missed the planted lost update")
	require.NotErrorIs(t, err, simtest.ErrNoViolation)
	require.ErrorContains(t, err, "contract violated")
	t.Logf("seed %d caught the planted bug: %v", seed, err)
}

//go:build failpoint

package epaxos_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/failpoints"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// TestSabotageDroppedDependencyIsCaught plants replicas that answer
// PreAccept with the coordinator's deps only, so fast-path commits drop
// dependencies; the sweep's order or linearizability check must catch it.
func TestSabotageDroppedDependencyIsCaught(t *testing.T) {
	failpoints.Enable(t, "protocols/epaxos", "dropDeps")
	drainInvariants()
	cfg := sweepConfig(5, 2, 2)
	cfg.Faults = "none"
	cfg.Clients = 8
	seed, err := simtest.FirstViolation(cfg, 1, 200)
	require.Error(t, err, "the sweep missed the dropped dependencies")
	require.NotErrorIs(t, err, simtest.ErrNoViolation)
	t.Logf("seed %d caught the planted bug: %v", seed, err)
	// The end-of-run invariants see it too: fast commits miss deps.
	_, errs := drainInvariants()
	require.NotEmpty(t, errs, "the visibility invariant missed the dropped dependencies")
	t.Logf("invariants: %v", errs[0])
}

// TestSabotageRecoverOKReportsPromiseIsCaughtBySweep plants the original
// EPaxos bug (RecoverOK reports the promise instead of the vote ballot)
// under swarm faults at n = 3: clients do not always see the damage, but
// the end-of-run agreement invariant must catch it within 3000 seeds (seeds 1101-1200 do at the time of writing).
func TestSabotageRecoverOKReportsPromiseIsCaughtBySweep(t *testing.T) {
	failpoints.Enable(t, "protocols/epaxos", "recoverOKReportsPromise")
	cfg := sweepConfig(3, 1, 1)
	for first := uint64(1); first <= 3000; first += 100 {
		drainInvariants()
		_, _ = simtest.FirstViolation(cfg, first, 100)
		if _, errs := drainInvariants(); len(errs) > 0 {
			t.Logf("caught in seeds %d..%d: %v", first, first+99, errs[0])
			return
		}
	}
	t.Fatal("3000 seeds missed the original EPaxos recovery bug")
}

// TestSabotagePreAcceptOKBeforePersistIsCaught plants replicas that answer
// a PreAccept without persisting the dependencies they reported: the
// ack-crash fault must catch it.
func TestSabotagePreAcceptOKBeforePersistIsCaught(t *testing.T) {
	failpoints.Enable(t, "protocols/epaxos", "preAcceptOKBeforePersist")
	drainInvariants()
	simtest.RequireAckCrashCatches(t, sweepConfig(3, 1, 1), 200)
	drainInvariants()
}

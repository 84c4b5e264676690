//go:build failpoint

package wbcast_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/failpoints"
	"github.com/blossom-dso/blossom/simnet"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// sabotage turns on the failpoint name of this package for the test.
func sabotage(t *testing.T, name string) { failpoints.Enable(t, "protocols/whitebox-multicast", name) }

// TestSabotageDeliverWithoutWaitingIsCaught plants leaders that deliver a
// committed message without waiting for the pending messages of their group
// that could still get a smaller timestamp; the multicast order checks must
// catch it.
func TestSabotageDeliverWithoutWaitingIsCaught(t *testing.T) {
	sabotage(t, "deliverWithoutWaiting")
	cfg := simtest.MulticastConfig("wbcast", 3, 0)
	cfg.Faults = "none"
	seed, err := simtest.FirstViolation(cfg, 1, 50)
	require.Error(t, err, "the sweep missed the planted ordering bug")
	require.NotErrorIs(t, err, simtest.ErrNoViolation)
	require.Contains(t, err.Error(), "order")
	t.Logf("seed %d caught the planted bug: %v", seed, err)
	// The multicast checks of the same run see it too: the union of the
	// delivery orders has a cycle.
	cfg.Seed = seed
	res, err := simnet.Run(cfg)
	require.NoError(t, err)
	require.NotEmpty(t, res.MulticastViolations)
	require.Contains(t, strings.Join(res.MulticastViolations, "\n"), "acyclic order")
	t.Logf("multicast checks: %s", res.MulticastError())
}

// TestSabotagePruneOnOwnGroupOnlyIsCaught plants processes that forget a
// delivered message at a checkpoint once their own group announced it,
// without waiting for the other destination groups; the compaction sweep
// must catch it (a group that still orders the message never gets this
// group's ACCEPT again).
func TestSabotagePruneOnOwnGroupOnlyIsCaught(t *testing.T) {
	sabotage(t, "pruneOnOwnGroupOnly")
	cfg := simtest.MulticastConfig("wbcast", 3, 0)
	cfg.CompactEvery = 3
	seed, err := simtest.FirstViolation(cfg, 1, 50)
	require.Error(t, err, "the compaction sweep missed the planted pruning bug")
	require.NotErrorIs(t, err, simtest.ErrNoViolation)
	t.Logf("seed %d caught the planted bug: %v", seed, err)
}

// TestSabotageAckBeforePersistIsCaught plants replicas that acknowledge
// ACCEPTs without persisting them: the ack-crash fault must catch it.
func TestSabotageAckBeforePersistIsCaught(t *testing.T) {
	sabotage(t, "ackBeforePersist")
	simtest.RequireAckCrashCatches(t, simtest.MulticastConfig("wbcast", 3, 0), 100)
}

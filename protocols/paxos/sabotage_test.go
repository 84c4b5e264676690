//go:build failpoint

package paxos_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/failpoints"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// sabotage turns on the failpoint name of this package for the test.
func sabotage(t *testing.T, name string) { failpoints.Enable(t, "protocols/paxos", name) }

// TestSabotageQuorumOneShortIsCaught plants quorums one acceptor short:
// quorums of two ballots need not intersect, and the sweep must find a seed
// whose history the checks reject.
func TestSabotageQuorumOneShortIsCaught(t *testing.T) {
	sabotage(t, "quorumOneShort")
	for _, p := range []string{"paxos", "fpaxos"} {
		seed, err := simtest.FirstViolation(sweepConfig(p, 2), 1, 200)
		require.Error(t, err, "%s: the sweep missed the planted quorum bug", p)
		require.NotErrorIs(t, err, simtest.ErrNoViolation)
		t.Logf("%s: seed %d caught the planted bug: %v", p, seed, err)
	}
}

// TestSabotageExecuteOutOfOrderIsCaught plants a leader that executes each
// slot as soon as it is chosen; the order check must catch it.
func TestSabotageExecuteOutOfOrderIsCaught(t *testing.T) {
	sabotage(t, "executeOutOfOrder")
	seed, err := simtest.FirstViolation(sweepConfig("paxos", 2), 1, 200)
	require.Error(t, err, "the sweep missed the planted ordering bug")
	require.NotErrorIs(t, err, simtest.ErrNoViolation)
	t.Logf("seed %d caught the planted bug: %v", seed, err)
}

// TestSabotageAckBeforePersistIsCaught plants acceptors that answer an
// Accept without persisting the vote: the ack-crash fault must catch it.
func TestSabotageAckBeforePersistIsCaught(t *testing.T) {
	sabotage(t, "ackBeforePersist")
	simtest.RequireAckCrashCatches(t, sweepConfig("paxos", 2), 50)
}

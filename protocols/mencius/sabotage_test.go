//go:build failpoint

package mencius_test

import (
	"testing"

	"github.com/pingcap/failpoint"
	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/simnet/simtest"
)

const fpPrefix = "github.com/blossom-dso/blossom/protocols/mencius/"

// sabotage enables the failpoint name for the duration of the test. This
// file is only built with the failpoint tag, by `make test-sabotage`, whose
// build rewrites the markers; elsewhere they are inert.
func sabotage(t *testing.T, name string) {
	t.Helper()
	require.NoError(t, failpoint.Enable(fpPrefix+name, "return(true)"))
	t.Cleanup(func() { require.NoError(t, failpoint.Disable(fpPrefix+name)) })
}

// TestSabotageExecuteOnChooseIsCaught plants replicas that execute a slot
// as soon as it is chosen, ahead of earlier slots still undecided: the
// order check must catch it.
func TestSabotageExecuteOnChooseIsCaught(t *testing.T) {
	sabotage(t, "executeOnChoose")
	for _, n := range []int{3, 5} {
		seed, err := simtest.FirstViolation(sweepConfig(n), 1, 100)
		require.Error(t, err, "n=%d: the sweep missed the planted ordering bug", n)
		require.NotErrorIs(t, err, simtest.ErrNoViolation)
		t.Logf("n=%d: seed %d caught the planted bug: %v", n, seed, err)
	}
}

// TestSabotageAckBeforePersistIsCaught plants acceptors that answer an
// Accept without persisting their vote: the ack-crash fault must catch it
// (the scripted scenario does too:
// TestSabotageAckBeforePersistIsCaughtByScript).
func TestSabotageAckBeforePersistIsCaught(t *testing.T) {
	sabotage(t, "ackBeforePersist")
	simtest.RequireAckCrashCatches(t, sweepConfig(3), 40)
}

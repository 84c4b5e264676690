//go:build failpoint

package skeen_test

import (
	"testing"

	"github.com/pingcap/failpoint"
	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/simnet/simtest"
)

// TestSabotageAckBeforePersistIsCaught plants acceptors of skeen's
// embedded Paxos groups that answer an Accept without persisting the vote
// (the paxos failpoint ackBeforePersist): the ack-crash fault must catch
// it. This file is only built with the failpoint tag, by `make
// test-sabotage`, whose build rewrites the markers.
func TestSabotageAckBeforePersistIsCaught(t *testing.T) {
	const fp = "github.com/blossom-dso/blossom/protocols/paxos/ackBeforePersist"
	require.NoError(t, failpoint.Enable(fp, "return(true)"))
	t.Cleanup(func() { require.NoError(t, failpoint.Disable(fp)) })
	simtest.RequireAckCrashCatches(t, simtest.MulticastConfig("skeen", 3, 0), 100)
}

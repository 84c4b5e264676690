//go:build failpoint

package skeen_test

import (
	"testing"

	"github.com/blossom-dso/blossom/internal/failpoints"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// TestSabotageAckBeforePersistIsCaught plants acceptors of skeen's
// embedded Paxos groups that answer an Accept without persisting the vote
// (the paxos failpoint ackBeforePersist): the ack-crash fault must catch
// it. This file is only built with the failpoint tag, by `make
// test-sabotage`, whose build rewrites the markers.
func TestSabotageAckBeforePersistIsCaught(t *testing.T) {
	failpoints.Enable(t, "protocols/paxos", "ackBeforePersist")
	simtest.RequireAckCrashCatches(t, simtest.MulticastConfig("skeen", 3, 0), 100)
}

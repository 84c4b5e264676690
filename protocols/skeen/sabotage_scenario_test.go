//go:build failpoint

package skeen

import (
	"testing"

	"github.com/blossom-dso/blossom/internal/failpoints"
)

// TestSabotageAckBeforePersistIsCaughtByScript plants acceptors of the
// embedded Paxos groups that answer an Accept without persisting their
// vote (the paxos failpoint ackBeforePersist): in the ack-crash script
// (ackCrashScript: ack, crash, restart, a new leader without the old one)
// the new leader misses x and delivers y first where the old one delivered
// x.
func TestSabotageAckBeforePersistIsCaughtByScript(t *testing.T) {
	failpoints.Enable(t, "protocols/paxos", "ackBeforePersist")
	requireFirstDisagreement(t, ackCrashScript(t, nil))
}

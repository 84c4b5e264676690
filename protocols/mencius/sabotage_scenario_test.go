//go:build failpoint

package mencius

import (
	"testing"

	"github.com/blossom-dso/blossom/internal/failpoints"
)

// TestSabotageAckBeforePersistIsCaughtByScript plants acceptors that answer
// an Accept without persisting their vote: in the ack-crash script
// (ackCrashScript: ack, crash, restart, revocation without the owner) the
// revoker misses the vote and chooses a no-op where the owner chose x.
func TestSabotageAckBeforePersistIsCaughtByScript(t *testing.T) {
	failpoints.Enable(t, "protocols/mencius", "ackBeforePersist")
	requireSlot1Disagreement(t, ackCrashScript(t, nil))
}

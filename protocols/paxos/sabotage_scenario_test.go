//go:build failpoint

package paxos

import (
	"testing"

	"github.com/blossom-dso/blossom/internal/failpoints"
)

// TestSabotageAckBeforePersistIsCaughtByScript plants acceptors that answer
// an Accept without persisting their vote: in the ack-crash script
// (ackCrashScript: ack, crash, restart, a new leader without the old one)
// the new leader misses the vote and chooses another value in the slot.
func TestSabotageAckBeforePersistIsCaughtByScript(t *testing.T) {
	failpoints.Enable(t, "protocols/paxos", "ackBeforePersist")
	requireSlot1Disagreement(t, ackCrashScript(t, nil))
}

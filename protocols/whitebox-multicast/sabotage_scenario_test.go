//go:build failpoint

package wbcast

import (
	"testing"

	"github.com/blossom-dso/blossom/internal/failpoints"
)

// TestSabotageAckBeforePersistIsCaughtByScript plants members that
// acknowledge ACCEPTs without persisting them: in the ack-crash script
// (ackCrashScript: ack, crash, restart, a new leader without the old one)
// the new leader misses x and delivers y first where the old one delivered
// x.
func TestSabotageAckBeforePersistIsCaughtByScript(t *testing.T) {
	failpoints.Enable(t, "protocols/whitebox-multicast", "ackBeforePersist")
	requireFirstDisagreement(t, ackCrashScript(t, nil))
}

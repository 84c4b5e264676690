//go:build failpoint

package atlas

import (
	"testing"

	"github.com/pingcap/failpoint"
	"github.com/stretchr/testify/require"
)

// TestSabotageAckBeforePersistIsCaughtByScriptAtF1 plants replicas that
// answer MCollect and MConsensus without persisting what they answered
// for: at f = 1, where the ack-crash sweep was reported to miss it (the
// fast quorum is a majority), the scripted ack-crash scenario
// (ackCrashScript: ack, crash, restart, a conflicting command without the
// proposer) commits z without x, which executed before z was proposed.
func TestSabotageAckBeforePersistIsCaughtByScriptAtF1(t *testing.T) {
	const fp = "github.com/blossom-dso/blossom/protocols/atlas/ackBeforePersist"
	require.NoError(t, failpoint.Enable(fp, "return(true)"))
	t.Cleanup(func() { require.NoError(t, failpoint.Disable(fp)) })
	c, x, z := ackCrashScript(t, nil)
	require.False(t, zAfterX(c, x, z), "z should miss x: deps %v", c.committedVal(z).deps)
}

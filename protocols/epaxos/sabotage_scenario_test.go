//go:build failpoint

package epaxos

import (
	"testing"

	"github.com/pingcap/failpoint"
	"github.com/stretchr/testify/require"
)

// TestSabotageRecoverOKReportsPromiseBreaksAgreement plants the original
// EPaxos bug: RecoverOK reports the promise held before the Recover
// instead of the vote ballot. In the §1.10 script, p1's last recovery then
// sees p1 and p3 tied at p1's previous promise, picks p3's Nop, and commits
// it while p2 committed (c, {x}).
func TestSabotageRecoverOKReportsPromiseBreaksAgreement(t *testing.T) {
	const fp = "github.com/blossom-dso/blossom/protocols/epaxos/recoverOKReportsPromise"
	t.Cleanup(func() { require.NoError(t, failpoint.Disable(fp)) })
	// The bug is switched on for step (5) only: earlier, p2's own reply
	// would report p3's promise and send the script elsewhere.
	c, _, p1, p2 := iplAnalogue(t, func() { require.NoError(t, failpoint.Enable(fp, "return(true)")) })
	require.True(t, p1.Val.Nop, "p1 should commit p3's stale Nop")
	require.False(t, p2.Val.Nop)
	c.stabilize()
	require.Positive(t, c.reps[1].Violations+c.reps[2].Violations+c.reps[3].Violations,
		"the disagreeing commits must meet at some replica")
}

// TestSabotageAcceptOKBeforePersistIsCaughtByScript plants replicas that
// answer an Accept without persisting their vote: in the ack-crash script
// (acceptOKScript: ack, crash, restart, recover without the proposer) the
// recovery misses the vote and commits other deps than the proposer did.
// The ack-crash sweep was reported to miss it (issue 16): the proposer's
// Commit must be lost too, with the proposer down.
func TestSabotageAcceptOKBeforePersistIsCaughtByScript(t *testing.T) {
	const fp = "github.com/blossom-dso/blossom/protocols/epaxos/acceptOKBeforePersist"
	require.NoError(t, failpoint.Enable(fp, "return(true)"))
	t.Cleanup(func() { require.NoError(t, failpoint.Disable(fp)) })
	c, x := acceptOKScript(t, nil)
	requireDisagreement(t, c, x)
}

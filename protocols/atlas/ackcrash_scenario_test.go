package atlas

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// ackCrashScript is the ack-crash scenario of the fast path at n = 3,
// f = 1, where the fast quorum is a majority: replica 2 answers replica
// 1's MCollect for x, replica 1 commits x on the fast path, executes it (a
// client may have its reply) and crashes before its MCommit leaves;
// replica 2 crashes right after its answer left and restarts from its
// records; replica 2 then proposes a conflicting z, which replicas 2 and 3
// commit and execute without the proposer of x. Only replica 2's durable
// collect of x tells them of x. forget, if set, edits replica 2's records
// before its restart; n is the number of records it had before x. It
// returns the cluster and the dots of x and z.
func ackCrashScript(t *testing.T, forget func(recs [][]byte, n int) [][]byte) (c *cluster, x, z Dot) {
	c = newCluster(t, 3, 1, 1)
	before := len(c.envs[1].records)
	c.submit(1, "k")
	x = Dot{Node: 1, Seq: 1}
	c.deliver(func(e envelope) bool { return e.to == 2 && isMsg[MCollect](e) })
	c.drop(func(e envelope) bool { return e.to == 3 })
	c.deliver(func(e envelope) bool { return e.to == 1 })
	require.Len(t, c.executedAt(1), 1, "x commits and executes at 1")
	c.drop(all)
	c.crash(1)
	c.crash(2)
	if forget != nil {
		c.envs[1].records = forget(c.envs[1].records, before)
	}
	c.restart(2)
	zc := c.submit(2, "k")
	c.settle(200_000)
	for id := protocols.NodeID(2); id <= 3; id++ {
		require.Contains(t, c.executedAt(id), zc.ID, "replica %d executes z", id)
	}
	z = Dot{Node: 2, Seq: 1}
	return c, x, z
}

// zAfterX reports whether z's commit orders it after x: x executed (at
// replica 1) before z was proposed, and they conflict, so z must depend on
// x (real-time order; a client read in z would otherwise miss x's write).
func zAfterX(c *cluster, x, z Dot) bool {
	deps := strings.Fields(strings.Trim(c.committedVal(z).deps, "[]"))
	return slices.Contains(deps, x.String())
}

// TestAckCrashFastPathKeepsTheCollect: replica 2's durable collect of x
// makes z depend on x, although x's proposer is down.
func TestAckCrashFastPathKeepsTheCollect(t *testing.T) {
	c, x, z := ackCrashScript(t, nil)
	require.True(t, zAfterX(c, x, z), "z committed with deps %v, without x", c.committedVal(z).deps)
	c.checkOrder()
}

// TestAckCrashScriptCatchesAForgottenCollect shows that the script catches
// the bug it is for: with replica 2's records of x removed (what a
// replica that answers MCollect before persisting leaves), z commits
// without x.
func TestAckCrashScriptCatchesAForgottenCollect(t *testing.T) {
	c, x, z := ackCrashScript(t, func(recs [][]byte, n int) [][]byte { return recs[:n] })
	require.False(t, zAfterX(c, x, z), "z should miss x")
}

package skeen

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/scripttest"
)

// scriptCluster is the scripted cluster of the ack-crash scenario: a
// queue of messages the script delivers or drops, and each replica's
// records.
type scriptCluster = scripttest.Cluster[*Replica]

// scriptMsg is a queued message.
type scriptMsg = scripttest.Msg

func newScriptCluster(t *testing.T, n int) *scriptCluster { return scripttest.New(t, n, New) }

// elect ticks process id alone, delivering every message to the live
// processes after each tick, until it leads its group's Paxos instance.
func elect(c *scriptCluster, id protocols.NodeID) {
	c.T.Helper()
	for range 200 {
		if c.Nodes[id].R.Leader() == id {
			return
		}
		c.Nodes[id].R.Tick()
		c.Pass(10, func(scriptMsg) bool { return true })
	}
	c.T.Fatalf("process %d did not become leader", id)
}

// ackCrashCmd is a command of the ack-crash script.
func ackCrashCmd(client uint64) protocols.Command {
	return protocols.Command{ID: protocols.CommandID{Client: client, Seq: 1}, Keys: []string{"k"}}
}

// ackCrashScript is the ack-crash scenario in one group {1, 2, 3}: leader
// 1 orders x, whose log entry's Accept reaches process 2 only; 2 persists
// its vote and answers, so the entry is chosen at 1 (quorum {1, 2}), which
// stamps and delivers x; 1 crashes before any Commit leaves; 2 crashes
// right after its answer left and restarts from its records; process 3
// takes over the group's Paxos instance with the quorum {2, 3}, without
// the old leader, and orders its own y. Only 2's durable vote tells 3 of
// x. forget, if set, edits process 2's records before the restart. It
// returns the cluster, with process 1 still holding its delivery.
func ackCrashScript(t *testing.T, forget func(recs [][]byte) [][]byte) *scriptCluster {
	c := newScriptCluster(t, 3)
	elect(c, 1)
	x, y := ackCrashCmd(1), ackCrashCmd(3)
	c.Nodes[1].R.Submit(x)
	c.Pass(1, func(m scriptMsg) bool { return m.To != 3 })
	c.Pass(1, func(m scriptMsg) bool { return m.To == 1 })
	require.Equal(t, []protocols.CommandID{x.ID}, c.Nodes[1].R.order, "1 delivers x")
	require.Empty(t, c.Nodes[3].R.order)
	// 1 crashes; its Commit never leaves.
	c.Nodes[1].Down = true
	c.Q = nil
	// 2 crashes right after its answer left and restarts.
	recs := slices.Clone(c.Nodes[2].Recs)
	if forget != nil {
		recs = forget(recs)
	}
	c.Start(2, recs)
	// 3 takes over without 1 and orders y.
	elect(c, 3)
	c.Nodes[3].R.Submit(y)
	c.Pass(20, func(scriptMsg) bool { return true })
	return c
}

// TestAckCrashNewLeaderFindsTheVote: the new leader learns process 2's
// durable vote and delivers x first, as the crashed leader did, then y.
func TestAckCrashNewLeaderFindsTheVote(t *testing.T) {
	c := ackCrashScript(t, nil)
	require.Equal(t, []protocols.CommandID{ackCrashCmd(1).ID, ackCrashCmd(3).ID}, c.Nodes[3].R.order)
}

// TestAckCrashScriptCatchesAForgottenVote shows that the script catches the
// bug it is for: with process 2's last record (its vote for x's entry)
// removed, what a process that answers before persisting leaves, process 3
// delivers y first while process 1 delivered x first.
func TestAckCrashScriptCatchesAForgottenVote(t *testing.T) {
	c := ackCrashScript(t, func(recs [][]byte) [][]byte {
		require.Len(t, recs, 2, "2's records are its promise to 1 and its vote")
		return recs[:1]
	})
	requireFirstDisagreement(t, c)
}

// requireFirstDisagreement checks that processes 1 and 3 delivered
// different commands first.
func requireFirstDisagreement(t *testing.T, c *scriptCluster) {
	t.Helper()
	a, b := c.Nodes[1].R.order, c.Nodes[3].R.order
	require.NotEmpty(t, a)
	require.NotEmpty(t, b, "3 delivers")
	require.NotEqual(t, a[0], b[0], "the new leader must deliver another command first than the old one")
	t.Logf("process 1 delivered %v first, process 3 %v", a[0], b[0])
}

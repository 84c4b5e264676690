package mencius

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

// chosen returns the value replica id holds chosen in slot.
func chosen(c *scriptCluster, id protocols.NodeID, slot uint64) []protocols.Command {
	c.T.Helper()
	e := c.Nodes[id].R.at(slot)
	require.NotNil(c.T, e, "replica %d has no slot %d", id, slot)
	require.True(c.T, e.chosen, "replica %d has slot %d unchosen", id, slot)
	return e.cmds
}

// ackCrashX is the command the owner of slot 1 proposes.
var ackCrashX = protocols.Command{ID: protocols.CommandID{Client: 1, Seq: 1}, Keys: []string{"k"}}

// ackCrashScript is the ack-crash scenario at n = 3: replica 1 proposes x
// in its slot 1 and the Accept reaches replica 2 only; 2 votes and answers
// AcceptOK, so x is chosen at 1 (quorum {1, 2}); 1 crashes before anyone
// else learns it; 2 crashes right after its AcceptOK left and restarts
// from its records; replica 3 revokes 1's slots with the quorum {2, 3},
// without the owner. Only 2's durable vote tells 3 that x may have been
// chosen in slot 1. forget, if set, edits replica 2's records before the
// restart. It returns the cluster, with replica 1 still holding its chosen
// slot.
func ackCrashScript(t *testing.T, forget func(recs [][]byte) [][]byte) *scriptCluster {
	c := newScriptCluster(t, 3)
	c.Nodes[1].R.Submit(ackCrashX)
	c.Pass(1, func(m scriptMsg) bool { return m.To == 2 })
	c.Pass(1, func(m scriptMsg) bool { return m.To == 1 })
	require.Equal(t, []protocols.Command{ackCrashX}, chosen(c, 1, 1), "x is chosen at 1")
	// 1 crashes; nobody else hears that x is chosen.
	c.Nodes[1].Down = true
	c.Q = nil
	// 2 crashes right after its AcceptOK left and restarts.
	recs := slices.Clone(c.Nodes[2].Recs)
	if forget != nil {
		recs = forget(recs)
	}
	c.Start(2, recs)
	// 3 revokes 1's slots from slot 1.
	c.Nodes[3].R.revoke(1, 1)
	c.Pass(20, func(scriptMsg) bool { return true })
	return c
}

// TestAckCrashRevocationFindsTheVote: the revoker learns replica 2's
// durable vote and chooses x in slot 1, as the crashed owner did.
func TestAckCrashRevocationFindsTheVote(t *testing.T) {
	c := ackCrashScript(t, nil)
	require.Equal(t, chosen(c, 1, 1), chosen(c, 3, 1))
	require.Equal(t, chosen(c, 1, 1), chosen(c, 2, 1))
}

// TestAckCrashScriptCatchesAForgottenVote shows that the script catches the
// bug it is for: with replica 2's accept record removed (what an acceptor
// that answers AcceptOK before persisting leaves), the revoker chooses a
// no-op in slot 1 while replica 1 chose x.
func TestAckCrashScriptCatchesAForgottenVote(t *testing.T) {
	c := ackCrashScript(t, func(recs [][]byte) [][]byte {
		require.Len(t, recs, 1)
		require.Equal(t, recAccept, recs[0][0], "the only record is the vote")
		return nil
	})
	requireSlot1Disagreement(t, c)
}

// requireSlot1Disagreement checks that replicas 1 and 3 chose different
// values in slot 1.
func requireSlot1Disagreement(t *testing.T, c *scriptCluster) {
	t.Helper()
	a, b := chosen(c, 1, 1), chosen(c, 3, 1)
	require.NotEqual(t, a, b, "the revoker must choose another value than the owner")
	t.Logf("replica 1 chose %v in slot 1, replica 3 chose %v", a, b)
}

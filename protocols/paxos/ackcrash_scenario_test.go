package paxos

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// pass delivers every queued message that keep accepts, in order, and
// discards the others, until the queue is empty or rounds passes ran.
func (nt *tNet) pass(rounds int, keep func(m tMsg) bool) {
	for range rounds {
		if len(nt.q) == 0 {
			return
		}
		q := nt.q
		nt.q = nil
		for _, m := range q {
			if nd := nt.nodes[m.to]; keep(m) && !nd.down {
				nd.r.Step(m.from, m.m)
			}
		}
	}
}

// ackCrashCmd is a client command of the ack-crash script.
func ackCrashCmd(client uint64) protocols.Command {
	return protocols.Command{ID: protocols.CommandID{Client: client, Seq: 1}, Keys: []string{"k"}}
}

// ackCrashScript is the ack-crash scenario at n = 3: replica 1 leads,
// proposes x in slot 1, and the Accept reaches replica 2 only; 2 votes
// and answers AcceptOK, so x is chosen at 1 (quorum {1, 2}); 1 crashes
// before any Commit leaves; 2 crashes right after its AcceptOK left and
// restarts from its records; replica 3, which holds its own command y,
// campaigns with the quorum {2, 3}, without the old leader. Only 2's
// durable vote tells 3 that x may have been chosen in slot 1. forget, if
// set, edits replica 2's records before the restart. It returns the
// cluster, with replica 1 still holding its chosen slot.
func ackCrashScript(t *testing.T, forget func(recs [][]byte) [][]byte) *tNet {
	nt := newTNet(t, 1, 3, Options{})
	nt.drop = 0
	all := func(tMsg) bool { return true }
	n1, n2, n3 := nt.nodes[1], nt.nodes[2], nt.nodes[3]
	// 1 becomes leader with everyone's promise.
	n1.r.campaign()
	nt.pass(5, all)
	require.Equal(t, leader, n1.r.role, "1 leads")
	// x goes to slot 1; the Accept to 3 is lost (1's vote for itself is
	// an AcceptOK to itself).
	n1.r.Submit(ackCrashCmd(1))
	nt.pass(1, func(m tMsg) bool { return m.to != 3 })
	nt.pass(1, func(m tMsg) bool { return m.to == 1 })
	e := n1.r.at(1)
	require.NotNil(t, e)
	require.True(t, e.chosen, "x is chosen at 1")
	require.Equal(t, []protocols.Command{ackCrashCmd(1)}, e.cmds)
	// 1 crashes; its Commit never leaves.
	n1.down = true
	nt.q = nil
	// 2 crashes right after its AcceptOK left and restarts.
	recs := slices.Clone(n2.recs)
	if forget != nil {
		recs = forget(recs)
	}
	n2.recs = recs
	n2.r = nt.start(n2, nil, recs)
	// 3 campaigns without 1 and proposes its own y.
	n3.r.Submit(ackCrashCmd(3))
	n3.r.campaign()
	nt.pass(20, all)
	require.Equal(t, leader, n3.r.role, "3 leads")
	return nt
}

// slot1 returns the value replica id holds chosen in slot 1.
func slot1(t *testing.T, nt *tNet, id protocols.NodeID) []protocols.Command {
	t.Helper()
	e := nt.nodes[id].r.at(1)
	require.NotNil(t, e, "replica %d has no slot 1", id)
	require.True(t, e.chosen, "replica %d has slot 1 unchosen", id)
	return e.cmds
}

// TestAckCrashNewLeaderFindsTheVote: the new leader learns replica 2's
// durable vote and chooses x in slot 1, as the crashed leader did.
func TestAckCrashNewLeaderFindsTheVote(t *testing.T) {
	nt := ackCrashScript(t, nil)
	require.Equal(t, slot1(t, nt, 1), slot1(t, nt, 3))
}

// TestAckCrashScriptCatchesAForgottenVote shows that the script catches the
// bug it is for: with replica 2's accept record removed (what an acceptor
// that answers AcceptOK before persisting leaves), replica 3 chooses y in
// slot 1 while replica 1 chose x.
func TestAckCrashScriptCatchesAForgottenVote(t *testing.T) {
	nt := ackCrashScript(t, func(recs [][]byte) [][]byte {
		require.Equal(t, recAccept, recs[len(recs)-1][0], "the last record is the vote")
		return recs[:len(recs)-1]
	})
	requireSlot1Disagreement(t, nt)
}

// requireSlot1Disagreement checks that replicas 1 and 3 chose different
// values in slot 1.
func requireSlot1Disagreement(t *testing.T, nt *tNet) {
	t.Helper()
	a, b := slot1(t, nt, 1), slot1(t, nt, 3)
	require.NotEqual(t, a, b, "the new leader must choose another value than the old one")
	t.Logf("replica 1 chose %v in slot 1, replica 3 chose %v", a, b)
}

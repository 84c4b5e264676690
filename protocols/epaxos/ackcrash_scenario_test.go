package epaxos

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// acceptOKScript is the ack-crash scenario of the slow path at n = 3,
// f = e = 1: replica 1's command x goes slow with deps {y} (replica 3's
// conflicting y, which only 3 knew), replica 2 votes for (x, {y}) and
// answers AcceptOK, replica 1 commits with that quorum and crashes before
// its Commit leaves; replica 2 crashes right after its AcceptOK left and
// restarts from its records; replica 3 recovers x with replica 2, without
// the proposer. Replica 2 pre-accepted x with deps {} (it never saw y), so
// only its durable vote tells the recovery that (x, {y}) may have been
// chosen. forget, if set, edits replica 2's records before the restart.
// It returns the cluster (replica 1 still holding its commit) and x.
func acceptOKScript(t *testing.T, forget func(recs [][]byte) [][]byte) (*cluster, Dot) {
	c := newCluster(t, 3, 1, 1)
	x, y := Dot{Node: 1, Seq: 1}, Dot{Node: 3, Seq: 1}
	// 3 pre-accepts its own y; nobody else hears of it yet.
	c.reps[3].Submit(cmd(3, "k"))
	c.drop(forDot(y))
	// 1 proposes x with D0 = {}; 2 answers {} (lost), 3 answers {y}.
	c.reps[1].Submit(cmd(1, "k"))
	c.deliver(and(is[PreAccept], forDot(x)))
	c.drop(and(is[PreAcceptOK], from(2)))
	c.deliver(and(is[PreAcceptOK], from(3)))
	c.tick(1, c.reps[1].fastTimeout)
	s, _ := c.reps[1].Instance(x)
	require.Equal(t, Accepted, s.Phase, "x goes slow")
	require.Equal(t, []Dot{y}, s.Deps)
	// The Accept reaches 2 only; 2's AcceptOK commits x at 1, whose
	// Commit never leaves (1 crashes).
	c.drop(and(is[Accept], to(3)))
	c.deliver(and(is[Accept], to(2)))
	c.deliver(and(is[AcceptOK], to(1)))
	require.Equal(t, Committed, c.committed(x)[1].Phase, "x commits at 1")
	c.drop(to(1, 2, 3))
	// 2 crashes right after its AcceptOK left and restarts.
	recs := slices.Clone(c.envs[2].records)
	if forget != nil {
		recs = forget(recs)
	}
	c.start(2, 1, 1, recs)
	// 3 recovers x with 2; 1 is down.
	c.recover(3, x)
	for range 20 {
		c.drop(to(1))
		c.deliver(func(e envelope) bool { return e.to != 1 })
		c.tick(3, c.reps[3].retry)
		c.tick(2, c.reps[2].retry)
	}
	c.drop(to(1))
	return c, x
}

// TestAckCrashRecoveryFindsTheVote: the recovery finds replica 2's durable
// vote and commits what replica 1 committed.
func TestAckCrashRecoveryFindsTheVote(t *testing.T) {
	c, x := acceptOKScript(t, nil)
	got := c.committed(x)
	require.Contains(t, got, protocols.NodeID(3), "3 recovers x")
	require.Equal(t, got[1].Deps, got[3].Deps)
	require.Equal(t, got[1].Val, got[3].Val)
	c.checkInvariants()
}

// TestAckCrashScriptCatchesAForgottenVote shows that the script catches
// the bug it is for: with replica 2's vote record removed (what a replica
// that answers AcceptOK before persisting leaves), replica 3 recovers
// (x, {}) while replica 1 committed (x, {y}).
func TestAckCrashScriptCatchesAForgottenVote(t *testing.T) {
	c, x := acceptOKScript(t, func(recs [][]byte) [][]byte { return recs[:len(recs)-1] })
	requireDisagreement(t, c, x)
}

// requireDisagreement checks that replicas 1 and 3 committed x differently.
func requireDisagreement(t *testing.T, c *cluster, x Dot) {
	t.Helper()
	got := c.committed(x)
	require.Contains(t, got, protocols.NodeID(3), "3 recovers x")
	require.NotEqual(t, got[1].Deps, got[3].Deps, "the recovery must commit other deps than replica 1: 1 %+v, 3 %+v", got[1], got[3])
	t.Logf("replica 1 committed %v with deps %v, replica 3 with %v", x, got[1].Deps, got[3].Deps)
}

package epaxos

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// TestCoordinatorLearnsACommitAfterItsPeersExecuted is the scenario of
// simulation seed 6076 (issue 16; blossom sim --protocol epaxos --nodes 3
// --f 1 --e 1 ... --faults swarm --seed 6076 before 699a069): replica 2
// pre-accepts x, and a partition drops the answers of replicas 1 and 3 and
// then the commit a recovery by replica 1 sends it. Replicas 1 and 3
// execute x. After the heal, replica 2, still x's initial coordinator,
// retransmits its PreAccept; an executed replica must answer it with the
// commit (the committed value stays until the instance is stable), or
// replica 2 waits forever, never executing x nor anything that depends on
// it (the lost operation of seed 6076).
func TestCoordinatorLearnsACommitAfterItsPeersExecuted(t *testing.T) {
	c := newCluster(t, 3, 1, 1)
	x := Dot{Node: 2, Seq: 1}
	c.reps[2].Submit(cmd(2, "k"))
	// 1 and 3 pre-accept x; their answers are lost in the partition.
	c.deliver(and(is[PreAccept], to(1, 3)))
	c.drop(to(2))
	// Replica 1 recovers x and commits it with 3; nothing reaches 2.
	c.recover(1, x)
	for len(c.queue) > 0 {
		c.drop(to(2))
		c.deliver(func(e envelope) bool { return e.to != 2 })
	}
	for _, id := range []protocols.NodeID{1, 3} {
		require.True(t, c.reps[id].Executed(x), "replica %d executed x", id)
	}
	require.False(t, c.reps[2].Executed(x))
	// The partition heals: 2 retransmits its PreAccept.
	for range 5 {
		c.tick(2, c.reps[2].retry)
		c.stabilize()
	}
	require.True(t, c.reps[2].Executed(x), "the coordinator learns the commit of x from a replica that executed it")
	require.Len(t, c.envs[2].executed, 1)
	c.checkInvariants()
}

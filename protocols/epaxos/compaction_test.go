package epaxos

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
)

// commitAll submits one conflicting command per listed replica and lets
// every one commit and execute everywhere.
func (c *cluster) commitAll(client uint64, key string, at ...protocols.NodeID) {
	for i, id := range at {
		c.reps[id].Submit(cmd(client+uint64(i), key))
	}
	c.stabilize()
	for _, id := range at {
		c.tick(id, 300)
	}
	c.stabilize()
}

// TestCheckpointRestartKeepsPromisesAndSkipsExecuted checkpoints a replica
// while nothing is stable yet, changes an instance afterwards, and restarts
// it from the checkpoint and the later records: executed commands are not
// executed again, later commits are, promises and votes are kept, and the
// replica keeps coordinating with fresh sequence numbers.
func TestCheckpointRestartKeepsPromisesAndSkipsExecuted(t *testing.T) {
	c := newCluster(t, 3, 1, 1)
	c.commitAll(1, "k", 1, 2)
	require.Len(t, c.envs[3].executed, 2)

	// An instance 3 promised to a recovery at ballot (5, 1) before the
	// checkpoint, and voted for at that ballot after it.
	d := Dot{Node: 1, Seq: 7}
	b := ballot.Ballot{Round: 5, Node: 1}
	c.reps[3].Step(1, Recover{Ballot: b, Dot: d})
	c.checkpoint(3)
	ck := c.envs[3].ck
	require.Equal(t, recCheckpoint, ck[0])
	for _, x := range c.reps[1].Dots() {
		_, ok := c.reps[3].Instance(x)
		require.True(t, ok, "nothing is stable before heartbeats: %v is kept", x)
	}
	// A commit after the checkpoint, and a later command of 3 itself.
	c.commitAll(10, "k", 2, 3)
	require.Len(t, c.envs[3].executed, 4)
	c.queue = nil

	before := map[Dot]InstanceState{}
	for _, x := range c.reps[3].Dots() {
		before[x], _ = c.reps[3].Instance(x)
	}
	c.restartFromCheckpoint(3, 1, 1)
	// The state machine restarts from the snapshot (commands 1 and 2); only
	// the two commands committed after the checkpoint execute again.
	require.Equal(t, []protocols.CommandID{{Client: 1, Seq: 1}, {Client: 2, Seq: 1}, {Client: 10, Seq: 1}, {Client: 11, Seq: 1}},
		ids(c.envs[3].executed))
	for x, s := range before {
		got, ok := c.reps[3].Instance(x)
		require.True(t, ok, "%v survives the restart", x)
		require.Equal(t, s.Bal, got.Bal, "%v promise", x)
		require.Equal(t, s.Abal, got.Abal, "%v vote", x)
		require.Equal(t, s.Phase, got.Phase, "%v phase", x)
		require.Equal(t, s.Val, got.Val, "%v value", x)
		require.Equal(t, s.Deps, got.Deps, "%v deps", x)
		require.True(t, s.Phase != Committed || c.reps[3].Executed(x), "%v executed", x)
	}
	// The promise made before the checkpoint still holds.
	c.reps[3].Step(2, Accept{Ballot: ballot.Ballot{Round: 4, Node: 2}, Dot: d, Val: NopValue})
	require.Len(t, c.queue, 1)
	require.Equal(t, Nack{Ballot: b, Dot: d}, c.queue[0].m)
	c.queue = nil

	// Fresh sequence numbers: 3 coordinated 3.1 before the restart.
	c.reps[3].Submit(cmd(20, "k"))
	c.stabilize()
	c.tick(3, 300)
	c.stabilize()
	_, ok := c.reps[1].Instance(Dot{Node: 3, Seq: 2})
	require.True(t, ok)
	require.Equal(t, protocols.CommandID{Client: 20, Seq: 1}, c.envs[1].executed[len(c.envs[1].executed)-1].ID)
	c.checkInvariants()

	// A checkpoint of a restarted replica, and a restart from it alone.
	c.checkpoint(3)
	snap := ids(c.envs[3].executed)
	c.restartFromCheckpoint(3, 1, 1)
	require.Equal(t, snap, ids(c.envs[3].executed), "everything was executed before the checkpoint")
}

// TestCheckpointForgetsStableInstances checks the pruning rule: executed
// instances are forgotten only once every replica reported executing them;
// a forgotten command still counts as a dependency of new conflicting
// commands and in Validate's conflicts, so replicas that forgot and replicas
// that did not answer alike; messages about forgotten instances are ignored.
func TestCheckpointForgetsStableInstances(t *testing.T) {
	c := newCluster(t, 3, 1, 1)
	c.commitAll(1, "k", 1, 2)
	old := c.reps[1].Dots()
	require.Len(t, old, 2)

	// Every replica reports executing both: they are stable.
	c.heartbeats()
	c.checkpoint(3)
	require.Empty(t, c.reps[3].Dots(), "every replica executed both instances")
	require.Zero(t, c.reps[3].done.Len(), "executed command ids are forgotten")
	require.Len(t, c.reps[3].keyIndex["k"], 2, "forgotten commands keep their dots in the key index")

	// Restart 3 from the checkpoint alone.
	c.restartFromCheckpoint(3, 1, 1)
	require.Len(t, c.envs[3].executed, 2, "the snapshot's two commands, not executed again")
	require.Empty(t, c.reps[3].Dots())
	for _, x := range old {
		require.True(t, c.reps[3].Executed(x))
	}

	// Messages about a forgotten instance are stale: ignored.
	c.reps[3].Step(1, Recover{Ballot: ballot.Ballot{Round: 9, Node: 1}, Dot: old[0]})
	c.reps[3].Step(1, Commit{Dot: old[0], Val: NopValue})
	c.reps[3].Step(1, PreAccept{Dot: old[0], Cmd: cmd(99, "k")})
	require.Empty(t, c.queue)
	require.Zero(t, c.reps[3].Violations)
	require.Empty(t, c.reps[3].Dots())

	// Validate of a new conflicting instance that does not list the old
	// ones: 3 (forgot them) and 2 (did not checkpoint) report the same.
	nd := Dot{Node: 1, Seq: 50}
	vb := ballot.Ballot{Round: 1, Node: 1}
	for _, id := range []protocols.NodeID{2, 3} {
		c.reps[id].Step(1, Recover{Ballot: vb, Dot: nd})
		c.reps[id].Step(1, Validate{Ballot: vb, Dot: nd, Cmd: cmd(50, "k")})
	}
	var got [2][]Conflict
	for _, e := range c.queue {
		if v, ok := e.m.(ValidateOK); ok {
			got[e.from-2] = v.Conflicts
		}
	}
	c.queue = nil
	require.Len(t, got[0], 2)
	require.Equal(t, got[0], got[1])

	// A new conflicting command depends on the forgotten ones everywhere:
	// the fast path still works.
	fast := c.envs[3].fast
	c.reps[3].Submit(cmd(60, "k"))
	c.stabilize()
	require.Equal(t, fast+1, c.envs[3].fast)
	s, _ := c.reps[1].Instance(Dot{Node: 3, Seq: 1})
	require.Equal(t, Committed, s.Phase)
	for _, x := range old {
		require.True(t, hasDot(s.Deps, x), "deps %v include %v", s.Deps, x)
	}
	c.checkInvariants()
}

// TestCheckpointNotStableWhileAPeerLags: a replica that has not executed an
// instance keeps the others from forgetting it, and learns it from them.
func TestCheckpointNotStableWhileAPeerLags(t *testing.T) {
	c := newCluster(t, 3, 1, 1)
	c.reps[1].Submit(cmd(1, "k"))
	// 3 hears of 1.1 only from the heartbeats.
	c.deliver(func(e envelope) bool { return e.to != 3 })
	c.drop(to(3))
	require.True(t, c.reps[2].Executed(Dot{Node: 1, Seq: 1}))
	c.heartbeats()
	require.False(t, c.reps[3].Executed(Dot{Node: 1, Seq: 1}))
	c.checkpoint(1)
	c.checkpoint(2)
	_, ok := c.reps[1].Instance(Dot{Node: 1, Seq: 1})
	require.True(t, ok, "3 has not executed 1.1: 1 keeps it")
	c.restartFromCheckpoint(1, 1, 1)
	// 3 learns the instance from the heartbeat and recovers it.
	c.heartbeats()
	c.tick(3, 3000)
	c.stabilize()
	require.True(t, c.reps[3].Executed(Dot{Node: 1, Seq: 1}))
	require.Len(t, c.envs[3].executed, 1)
	c.heartbeats()
	c.checkpoint(1)
	_, ok = c.reps[1].Instance(Dot{Node: 1, Seq: 1})
	require.False(t, ok, "stable now")
	c.checkInvariants()
}

func TestCheckpointRejectsMalformedInput(t *testing.T) {
	samples := checkpointSamples(t)
	mk := func(ck []byte) error {
		_, err := New(protocols.Config{Self: 3, Peers: []protocols.NodeID{1, 2, 3}, F: 1, Env: newNullEnv(), Checkpoint: ck})
		return err
	}
	for _, s := range samples {
		require.NoError(t, mk(s))
		for n := range len(s) {
			require.Error(t, mk(s[:n]), "truncated to %d bytes", n)
		}
		require.Error(t, mk(append(s, 0)), "trailing byte")
	}
	require.Error(t, mk([]byte{recInstance}))
	// An uncommitted record of an instance the checkpoint says executed.
	_, err := New(protocols.Config{Self: 3, Peers: []protocols.NodeID{1, 2, 3}, F: 1, Env: newNullEnv(), Checkpoint: samples[1],
		Recovered: [][]byte{instanceRecord(&instance{dot: Dot{Node: 1, Seq: 1}, phase: PreAccepted})}})
	require.Error(t, err)
}

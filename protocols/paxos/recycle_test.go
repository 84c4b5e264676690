package paxos

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// scriptedRun runs a three-replica cluster through a seeded script and
// returns it settled, with what each replica executed and the chosen
// values.
func scriptedRun(t *testing.T, seed uint64) (*tNet, map[protocols.NodeID][]protocols.CommandID, map[uint64][]protocols.CommandID) {
	nt := newTNet(t, seed, 3, Options{})
	for range 3000 {
		nt.step(true)
	}
	nt.quiesce(200)
	execs := map[protocols.NodeID][]protocols.CommandID{}
	for _, id := range nt.peers {
		execs[id] = nt.nodes[id].execs
	}
	chosen := map[uint64][]protocols.CommandID{}
	for s, v := range nt.chosen() {
		chosen[s] = cmdIDs(v)
	}
	return nt, execs, chosen
}

// TestReleasedMemoryStartsClean releases a cluster's replicas after a run
// and reruns the same script, whose replicas then grow their logs and cut
// their command lists from the released pages and chunks: the rerun must
// choose and execute exactly what the first run did. A released replica is
// left empty.
func TestReleasedMemoryStartsClean(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		nt, execs, chosen := scriptedRun(t, seed)
		require.NotEmpty(t, chosen, "seed %d: the script chose values", seed)
		for _, id := range nt.peers {
			r := nt.nodes[id].r
			r.Release()
			require.Zero(t, r.log.len(), "seed %d: released log", seed)
			require.Nil(t, r.cmds.chunks, "seed %d: released arena", seed)
		}
		_, execs2, chosen2 := scriptedRun(t, seed)
		require.Equal(t, chosen, chosen2, "seed %d: chosen values after a release", seed)
		require.Equal(t, execs, execs2, "seed %d: executions after a release", seed)
	}
}

// TestCompactionEndsChunkList checks that a compacting replica stops
// listing its chunks, so that it does not keep those its log has dropped.
func TestCompactionEndsChunkList(t *testing.T) {
	nt := newTNet(t, 7, 3, Options{Retain: 4})
	for range 2000 {
		nt.step(true)
	}
	nt.quiesce(200)
	var r *Replica
	for _, id := range nt.peers {
		if nt.nodes[id].r.role == leader {
			r = nt.nodes[id].r
		}
	}
	require.NotNil(t, r, "a leader")
	require.NotEmpty(t, r.cmds.chunks, "an uncompacted leader lists its chunks")
	r.Checkpoint()
	require.Positive(t, r.base, "the checkpoint compacted")
	require.Nil(t, r.cmds.chunks, "a compaction ends the list")
	require.True(t, r.cmds.untracked)
	for range cmdChunk + 1 { // at least one new chunk
		r.cmds.cut(protocols.Command{})
	}
	require.Nil(t, r.cmds.chunks, "chunks cut after a compaction are not listed")
}

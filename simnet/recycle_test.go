package simnet

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// poisonPools stocks the recycling pools with buffers full of nonzero
// junk, as a run that used them and handed them back could leave them.
func poisonPools() {
	const n = 1 << 14
	junk := protocols.CommandID{Client: 1, Seq: 1}
	for range 8 {
		e := make([]execRec, n)
		for i := range e {
			e[i] = execRec{id: junk}
		}
		execPool.Put(&e)
		b := &checkBufs{
			lats: make([]int64, n), seenIn: make([]int32, n), firstV: make([]int32, n),
			oneKey: make([]int32, n), vKey: make([]int32, n), vCmd: make([]protocols.CommandID, n),
		}
		for i := range n {
			b.lats[i], b.seenIn[i], b.firstV[i], b.oneKey[i], b.vKey[i], b.vCmd[i] = 1, 1, 0, 1, 0, junk
		}
		// The graph's arrays are filled by append only: their junk lies
		// beyond their lengths.
		b.g.head, b.g.to, b.g.next, b.g.where = junk32(n)[:0], junk32(n)[:0], junk32(n)[:0], junk32(n)[:0]
		checkPool.Put(b)
	}
}

// junk32 returns n ones.
func junk32(n int) []int32 {
	s := make([]int32, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

// TestRecycledBuffersStartClean runs faulty configurations (restarts give
// nodes several incarnations) once, then again after stocking the pools
// with junk: every result must be the same, so a recycled buffer's earlier
// contents never reach a run.
func TestRecycledBuffersStartClean(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		cfg := Config{
			Protocol: "toy-seq", Nodes: 5, Clients: 10, Ops: 600, Keys: 3, Conflict: 30, Reads: 30,
			Latency: "uniform:1-3", Faults: "swarm", Seed: seed, RecordExecutions: true,
		}
		want, err := Run(cfg)
		require.NoError(t, err, "seed %d", seed)
		poisonPools()
		got, err := Run(cfg)
		require.NoError(t, err, "seed %d", seed)
		require.Equal(t, want.Digest, got.Digest, "seed %d", seed)
		require.Equal(t, want.OrderViolations, got.OrderViolations, "seed %d", seed)
		require.Equal(t, want.Overall, got.Overall, "seed %d", seed)
		require.Equal(t, want.PerSite, got.PerSite, "seed %d", seed)
		for i := range want.PerNode {
			require.Equal(t, want.PerNode[i].Executions, got.PerNode[i].Executions, "seed %d node %d", seed, i+1)
		}
	}
}

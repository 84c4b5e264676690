package skeen_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/blossom-dso/blossom/protocols/skeen"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// TestMulticast runs the multicast suite of simtest: swarm sweeps over 3 to
// 5 groups with every multicast, order, liveness and linearizability check,
// determinism, and a fault-free run.
func TestMulticast(t *testing.T) {
	simtest.MulticastSuite(t, "skeen")
}

// TestCompactionSweep runs multicast swarm sweeps with aggressive
// compaction: every process checkpoints after every 3 (or 10) records (its
// Skeen state with the embedded Paxos checkpoint), and a crashed process
// restarts from its last durable checkpoint, its state machine snapshot and
// the records after it. Groups of 3 (f=1) and of 5 (f=2).
func TestCompactionSweep(t *testing.T) {
	for _, c := range []struct {
		groups, f, every int
		first            uint64
		seeds            int
	}{
		{3, 1, 3, 1, 40}, {4, 1, 10, 2001, 20}, {3, 2, 3, 1, 12},
	} {
		t.Run(fmt.Sprintf("groups=%d/f=%d/every=%d", c.groups, c.f, c.every), func(t *testing.T) {
			cfg := simtest.MulticastConfig("skeen", c.groups, 0)
			cfg.F, cfg.CompactEvery = c.f, c.every
			simtest.Sweep(t, cfg, c.first, c.seeds)
		})
	}
	t.Run("compactions happen", func(t *testing.T) {
		cfg := simtest.MulticastConfig("skeen", 3, 0)
		cfg.CompactEvery, cfg.Seed = 3, 1
		res, err := simtest.Check(cfg)
		require.NoError(t, err)
		for _, ns := range res.PerNode {
			require.Positive(t, ns.Compactions, "node %d never compacted", ns.Node)
		}
	})
}

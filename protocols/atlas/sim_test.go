package atlas_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/blossom-dso/blossom/protocols/atlas"
	"github.com/blossom-dso/blossom/simnet"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// sweepConfig is a small, contended swarm configuration: few clients, two
// hot keys, 150 operations, so 200 seeds stay fast and Porcupine answers at
// once.
func sweepConfig(f int) simnet.Config {
	return simnet.Config{
		Protocol: "atlas", Nodes: 5, F: f, Clients: 4, Ops: 150, Keys: 2,
		Conflict: 60, Reads: 30, Size: 16, Latency: "uniform:1-4", Faults: "swarm",
	}
}

// TestSwarmSweep runs 200 seeds for f = 1 and f = 2 at n = 5 under swarm
// faults (loss, duplication, reordering, partitions, clogs, crash-stop and
// crash-restart of coordinators, lost tails); each run is checked for the
// order contract, liveness after the faults heal and linearizability. 20
// more seeds round-trip every message through the codec.
func TestSwarmSweep(t *testing.T) {
	for _, f := range []int{1, 2} {
		t.Run(fmt.Sprintf("n=5,f=%d", f), func(t *testing.T) {
			cfg := sweepConfig(f)
			simtest.Sweep(t, cfg, 1, 200)
			cfg.CodecCheck = true
			simtest.Sweep(t, cfg, 1001, 20)
		})
	}
}

// TestPaperAllFastPathsWithF1 is the paper's claim under the simulator:
// with f = 1 and no faults every command takes the fast path, at conflict
// rates 0, 10 and 100%.
func TestPaperAllFastPathsWithF1(t *testing.T) {
	for _, conflict := range []float64{0, 10, 100} {
		cfg := simnet.Config{Protocol: "atlas", Nodes: 5, F: 1, Clients: 10, Ops: 400,
			Conflict: conflict, Latency: "uniform:1-4", Faults: "none", Seed: 1}
		res, err := simtest.Check(cfg)
		require.NoError(t, err)
		require.Equal(t, res.Ops, res.OK)
		require.Equal(t, int64(res.Ops), res.FastPaths, "conflict %v", conflict)
		require.Zero(t, res.SlowPaths, "conflict %v", conflict)
	}
}

func TestSameSeedSameDigest(t *testing.T) {
	cfg := sweepConfig(2)
	cfg.Seed = 42
	a, err := simnet.Run(cfg)
	require.NoError(t, err)
	b, err := simnet.Run(cfg)
	require.NoError(t, err)
	require.Equal(t, a.Digest, b.Digest)
}

// TestCompactionSweep runs the swarm sweep with aggressive compaction:
// every node checkpoints after every 3 (or 10) persisted records, and a
// crashed node restarts from its last durable checkpoint, its state machine
// snapshot and the records after it. Every run passes the order, liveness
// and linearizability checks.
func TestCompactionSweep(t *testing.T) {
	for _, every := range []int{3, 10} {
		for _, f := range []int{1, 2} {
			t.Run(fmt.Sprintf("n=5,f=%d,every=%d", f, every), func(t *testing.T) {
				cfg := sweepConfig(f)
				cfg.CompactEvery = every
				simtest.Sweep(t, cfg, uint64(1+3000*every), 100)
			})
		}
	}
	t.Run("compactions happen", func(t *testing.T) {
		cfg := sweepConfig(2)
		cfg.CompactEvery, cfg.Seed = 3, 1
		res, err := simtest.Check(cfg)
		require.NoError(t, err)
		for _, ns := range res.PerNode {
			require.Positive(t, ns.Compactions, "node %d never compacted", ns.Node)
		}
	})
}

// TestAckCrashSweep runs f = 1 and f = 2 with the ack-crash fault
// (simtest.AckCrashFaults): replicas crash right after they answer a
// coordinator, the coordinator right after it next answers a client, and
// its commands are recovered from what the others made durable.
func TestAckCrashSweep(t *testing.T) {
	for _, f := range []int{1, 2} {
		t.Run(fmt.Sprintf("n=5,f=%d", f), func(t *testing.T) {
			cfg := sweepConfig(f)
			cfg.Faults = simtest.AckCrashFaults
			simtest.Sweep(t, cfg, 1, 60)
		})
	}
}

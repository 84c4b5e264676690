package skeen_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/blossom-dso/blossom/protocols/skeen"
	"github.com/blossom-dso/blossom/simnet"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// sweepConfig is a multicast run small enough for fast sweeps and contended
// enough (three shared rows across the shards) that an order bug shows.
func sweepConfig(groups, dest int) simnet.Config {
	return simnet.Config{
		Protocol: "skeen", Groups: groups, Dest: dest, F: 1, Clients: 8, Ops: 300, Keys: 3,
		Conflict: 50, Reads: 40, Size: 16, Latency: "uniform:1-4", Faults: "swarm",
	}
}

// TestSwarmSweep runs 200 seeds under swarm faults (loss, duplication,
// reordering, partitions, clogged links, crash-stop, crash-restart, lost
// tails; leaders crash too), over 3 to 5 groups of 3 and commands addressed
// to 1 to all groups. Every run is checked for integrity, agreement,
// per-group order, acyclic order, the order contract, liveness after the
// faults heal, and linearizability of the sharded map. A few seeds also
// round-trip every message through the codec.
func TestSwarmSweep(t *testing.T) {
	for _, c := range []struct{ groups, dest, seeds int }{
		{3, 0, 70}, {4, 0, 50}, {5, 0, 30}, {3, 1, 20}, {4, 2, 15}, {5, 5, 15},
	} {
		t.Run(fmt.Sprintf("groups=%d/dest=%d", c.groups, c.dest), func(t *testing.T) {
			cfg := sweepConfig(c.groups, c.dest)
			simtest.Sweep(t, cfg, 1, c.seeds)
			cfg.CodecCheck = true
			simtest.Sweep(t, cfg, 1001, 3)
		})
	}
}

func TestSameSeedSameDigest(t *testing.T) {
	cfg := sweepConfig(3, 0)
	cfg.Seed = 42
	a, err := simnet.Run(cfg)
	require.NoError(t, err)
	b, err := simnet.Run(cfg)
	require.NoError(t, err)
	require.Equal(t, a.Digest, b.Digest)
}

// TestNoFaultsEveryCommandCompletes checks a fault-free run: every
// operation answered and every multicast check passes.
func TestNoFaultsEveryCommandCompletes(t *testing.T) {
	cfg := sweepConfig(4, 0)
	cfg.Faults = "none"
	cfg.Seed = 3
	res, err := simtest.Check(cfg)
	require.NoError(t, err)
	require.Equal(t, res.Ops, res.OK)
	require.Positive(t, res.LeaderDeliveries)
}

package simtest

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/simnet"
)

// MulticastConfig is a multicast run of protocol small enough for fast
// sweeps and contended enough (three shared rows across the shards) that an
// order bug shows: groups groups of 3, each command to dest groups (0:
// mixed), swarm faults.
func MulticastConfig(protocol string, groups, dest int) simnet.Config {
	return simnet.Config{
		Protocol: protocol, Groups: groups, Dest: dest, F: 1, Clients: 8, Ops: 300, Keys: 3,
		Conflict: 50, Reads: 40, Size: 16, Latency: "uniform:1-4", Faults: "swarm",
	}
}

// MulticastSuite is the test suite every atomic multicast protocol runs:
// 200 seeds under swarm faults (loss, duplication, reordering, partitions,
// clogged links, crash-stop, crash-restart, lost tails; leaders crash too),
// over 3 to 5 groups of 3 and commands addressed to 1 to all groups, every
// run checked for integrity, agreement, per-group order, acyclic order, the
// order contract, liveness after the faults heal, and linearizability of
// the sharded map, a few seeds with every message round-tripped through the
// codec; 40 seeds with the ack-crash fault too (AckCrashFaults); then
// determinism, and a fault-free run that answers everything.
func MulticastSuite(t *testing.T, protocol string) {
	t.Run("SwarmSweep", func(t *testing.T) {
		for _, c := range []struct{ groups, dest, seeds int }{
			{3, 0, 70}, {4, 0, 50}, {5, 0, 30}, {3, 1, 20}, {4, 2, 15}, {5, 5, 15},
		} {
			t.Run(fmt.Sprintf("groups=%d/dest=%d", c.groups, c.dest), func(t *testing.T) {
				cfg := MulticastConfig(protocol, c.groups, c.dest)
				Sweep(t, cfg, 1, c.seeds)
				cfg.CodecCheck = true
				Sweep(t, cfg, 1001, 3)
			})
		}
	})
	t.Run("AckCrashSweep", func(t *testing.T) {
		cfg := MulticastConfig(protocol, 3, 0)
		cfg.Faults = AckCrashFaults
		Sweep(t, cfg, 1, 40)
	})
	t.Run("SameSeedSameDigest", func(t *testing.T) {
		cfg := MulticastConfig(protocol, 3, 0)
		cfg.Seed = 42
		a, err := simnet.Run(cfg)
		require.NoError(t, err)
		b, err := simnet.Run(cfg)
		require.NoError(t, err)
		require.Equal(t, a.Digest, b.Digest)
	})
	t.Run("NoFaultsEveryCommandCompletes", func(t *testing.T) {
		cfg := MulticastConfig(protocol, 4, 0)
		cfg.Faults = "none"
		cfg.Seed = 3
		res, err := Check(cfg)
		require.NoError(t, err)
		require.Equal(t, res.Ops, res.OK)
		require.Positive(t, res.LeaderDeliveries)
	})
}

package paxos_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/paxos"
	"github.com/blossom-dso/blossom/simnet"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// sweepConfig is the configuration of the swarm sweeps: small enough that
// Porcupine answers fast, contended enough (three hot keys) that an order
// bug shows.
func sweepConfig(protocol string, f int) simnet.Config {
	return simnet.Config{
		Protocol: protocol, Nodes: 5, F: f, Clients: 8, Ops: 600, Keys: 3,
		Conflict: 60, Reads: 40, Size: 16, Latency: "uniform:1-4", Faults: "swarm",
	}
}

// TestSwarmSweep runs 200 seeds per protocol and quorum setting under swarm
// faults (loss, duplication, reordering, partitions, clogged links,
// crash-stop, crash-restart, lost tails), every run checked for the order
// contract, for liveness after the faults heal, and for linearizability.
// Every tenth seed also round-trips each message through the codec.
func TestSwarmSweep(t *testing.T) {
	for _, c := range []struct {
		protocol string
		n, f     int
	}{{"paxos", 5, 2}, {"fpaxos", 5, 1}, {"fpaxos", 5, 2}, {"paxos", 3, 1}, {"paxos", 7, 3}, {"fpaxos", 7, 1}} {
		t.Run(fmt.Sprintf("%s/n=%d/f=%d", c.protocol, c.n, c.f), func(t *testing.T) {
			cfg := sweepConfig(c.protocol, c.f)
			cfg.Nodes = c.n
			simtest.Sweep(t, cfg, 1, 200)
			cfg.CodecCheck = true
			simtest.Sweep(t, cfg, 1001, 20)
		})
	}
}

// TestPlanetFPaxosThirteenSites runs Flexible Paxos with f = 1 over 13 GCP
// regions with faults, as the planet experiments do.
func TestPlanetFPaxosThirteenSites(t *testing.T) {
	cfg := simnet.Config{
		Protocol: "fpaxos", Nodes: 13, F: 1, Clients: 13, Ops: 260, Keys: 2,
		Conflict: 50, Reads: 50, Latency: "planet:gcp", Faults: "swarm",
	}
	simtest.Sweep(t, cfg, 1, 8)
}

func TestSameSeedSameDigestDifferentSeedsDiffer(t *testing.T) {
	cfg := sweepConfig("paxos", 2)
	cfg.Seed = 42
	a, err := simnet.Run(cfg)
	require.NoError(t, err)
	b, err := simnet.Run(cfg)
	require.NoError(t, err)
	require.Equal(t, a.Digest, b.Digest, "seed 42 replayed differently")
	digests := map[uint64]uint64{}
	for seed := uint64(1); seed <= 10; seed++ {
		cfg.Seed = seed
		r, err := simnet.Run(cfg)
		require.NoError(t, err)
		prev, dup := digests[r.Digest]
		require.False(t, dup, "seeds %d and %d gave the same digest", prev, seed)
		digests[r.Digest] = seed
	}
}

// TestNoFaultsEveryCommandCompletes checks that a fault-free run answers
// every operation and ends with every replica following one leader.
func TestNoFaultsEveryCommandCompletes(t *testing.T) {
	for _, p := range []string{"paxos", "fpaxos"} {
		cfg := sweepConfig(p, 1)
		cfg.Faults = "none"
		cfg.Seed = 3
		res, err := simtest.Check(cfg)
		require.NoError(t, err)
		require.Equal(t, res.Ops, res.OK, "%s: every operation must get a reply without faults", p)
		require.NotZero(t, res.Leader, "%s: the live replicas must agree on a leader", p)
		for _, ns := range res.PerNode {
			require.Equal(t, res.Leader, ns.Leader, "%s: node %d follows another leader", p, ns.Node)
		}
	}
}

// Test-only registrations of Paxos with small retention windows, so that
// the compaction sweeps reach the window's edge in short runs.
func init() {
	for _, w := range []int{4, 16} {
		protocols.Register(fmt.Sprintf("paxos-retain%d", w), func(cfg protocols.Config) (protocols.Protocol, error) {
			return paxos.NewWithOptions(cfg, paxos.Options{Retain: w})
		}, paxos.Codec{})
	}
}

// TestCompactionSweep runs swarm sweeps with aggressive compaction: every
// node checkpoints after every 3 (or 10) records, and a crashed node
// restarts from its last durable checkpoint, its state machine snapshot and
// the records after it. Every run passes the order, liveness and
// linearizability checks.
func TestCompactionSweep(t *testing.T) {
	for _, c := range []struct {
		protocol    string
		n, f, every int
		first       uint64
		seeds       int
	}{
		{"paxos", 3, 1, 3, 1, 100}, {"paxos", 5, 2, 3, 1, 100}, {"fpaxos", 5, 1, 3, 1, 50},
		{"paxos", 3, 1, 10, 2001, 50}, {"paxos", 5, 2, 10, 2001, 50},
	} {
		t.Run(fmt.Sprintf("%s/n=%d/f=%d/every=%d", c.protocol, c.n, c.f, c.every), func(t *testing.T) {
			cfg := sweepConfig(c.protocol, c.f)
			cfg.Nodes, cfg.CompactEvery = c.n, c.every
			simtest.Sweep(t, cfg, c.first, c.seeds)
		})
	}
	t.Run("compactions happen", func(t *testing.T) {
		cfg := sweepConfig("paxos", 2)
		cfg.CompactEvery, cfg.Seed = 3, 1
		res, err := simtest.Check(cfg)
		require.NoError(t, err)
		for _, ns := range res.PerNode {
			require.Positive(t, ns.Compactions, "node %d never compacted", ns.Node)
		}
	})
}

// TestCompactionBeyondTheWindow compacts every 3 records with a retention
// window of 4 slots, so that replicas that fall behind (a partition, a
// crash, a clogged link) find the slots they miss compacted at every peer.
// Such a replica catches up by state transfer (a Snapshot of a peer's
// checkpoint), so every run passes the order, liveness and
// linearizability checks. The same sweep without state transfer (the Env
// hidden behind a wrapper without protocols.StateTransfer) must leave some
// replica behind: the liveness check sees it.
func TestCompactionBeyondTheWindow(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			cfg := sweepConfig("paxos-retain4", (n-1)/2)
			cfg.Nodes, cfg.CompactEvery = n, 3
			simtest.Sweep(t, cfg, 1, 40)
		})
	}
	t.Run("fpaxos/n=5/f=1", func(t *testing.T) {
		cfg := sweepConfig("fpaxos-retain4", 1)
		cfg.CompactEvery = 3
		simtest.Sweep(t, cfg, 1, 40)
	})
	t.Run("without state transfer", func(t *testing.T) {
		stuck := 0
		for seed := uint64(1); seed <= 40; seed++ {
			cfg := sweepConfig("paxos-retain4-notransfer", 1)
			cfg.Nodes, cfg.CompactEvery, cfg.Seed = 3, 3, seed
			res, err := simnet.Run(cfg)
			require.NoError(t, err, "seed %d", seed)
			require.NoError(t, res.OrderError(), "seed %d", seed)
			if res.LivenessError() != nil {
				stuck++
			}
		}
		require.Positive(t, stuck, "no seed left a replica behind every window: the sweep does not reach the window's edge")
		t.Logf("without state transfer %d of 40 seeds left a replica behind every window", stuck)
	})
}

// plainEnv hides the optional interfaces of an Env (StateTransfer among
// them).
type plainEnv struct{ protocols.Env }

func init() {
	protocols.Register("fpaxos-retain4", func(cfg protocols.Config) (protocols.Protocol, error) {
		return paxos.NewWithOptions(cfg, paxos.Options{Flexible: true, Retain: 4})
	}, paxos.Codec{})
	protocols.Register("paxos-retain4-notransfer", func(cfg protocols.Config) (protocols.Protocol, error) {
		cfg.Env = plainEnv{cfg.Env}
		return paxos.NewWithOptions(cfg, paxos.Options{Retain: 4})
	}, paxos.Codec{})
}

// TestAckCrashSweep runs swarm faults with the ack-crash fault
// (simtest.AckCrashFaults): acceptors crash right after they answer, the
// leader right after it next answers a client, and a new leader must find
// every chosen value in what the acceptors made durable.
func TestAckCrashSweep(t *testing.T) {
	for _, c := range []struct{ n, f int }{{5, 2}, {3, 1}} {
		t.Run(fmt.Sprintf("paxos/n=%d/f=%d", c.n, c.f), func(t *testing.T) {
			cfg := sweepConfig("paxos", c.f)
			cfg.Nodes, cfg.Faults = c.n, simtest.AckCrashFaults
			simtest.Sweep(t, cfg, 1, 40)
		})
	}
}

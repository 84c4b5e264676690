package sequential_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	_ "github.com/blossom-dso/blossom/protocols/sequential"
	"github.com/blossom-dso/blossom/simnet"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// sweepConfig is the configuration of the swarm sweeps: three hot keys and
// many reads, so that a stale local read shows.
func sweepConfig(n int) simnet.Config {
	return simnet.Config{
		Protocol: "sequential", Nodes: n, F: (n - 1) / 2, Clients: 8, Ops: 600, Keys: 3,
		Conflict: 70, Reads: 60, Size: 16, Latency: "uniform:1-4", Faults: "swarm",
	}
}

// TestRegisteredContract checks that the strategy declares the sequential
// contract, so that simtest checks that one and not linearizability.
func TestRegisteredContract(t *testing.T) {
	spec, err := protocols.Lookup("sequential")
	require.NoError(t, err)
	require.Equal(t, protocols.Sequential, spec.Contract)
}

// TestSwarmSweep runs 30 seeds at n=3 and 20 at n=5 under swarm faults,
// every run checked for the order contract of the updates, liveness after
// the faults heal and sequential consistency (simtest.CheckSequential).
func TestSwarmSweep(t *testing.T) {
	for _, c := range []struct{ n, seeds int }{{3, 30}, {5, 20}} {
		t.Run(fmt.Sprintf("n=%d", c.n), func(t *testing.T) {
			cfg := sweepConfig(c.n)
			simtest.Sweep(t, cfg, 1, c.seeds)
			cfg.CodecCheck = true
			simtest.Sweep(t, cfg, 1001, 3)
		})
	}
}

// TestCompactionSweep runs swarm seeds with Paxos compacting its log every
// 10 records, so that lagging replicas are brought up to date by state
// transfer (through the wrapper's Env) while clients read locally.
func TestCompactionSweep(t *testing.T) {
	cfg := sweepConfig(3)
	cfg.CompactEvery = 10
	simtest.Sweep(t, cfg, 2001, 15)
}

// TestReadsAreLocal checks that the strategy serves reads locally: without
// faults a command through the log executes at all 3 replicas and a local
// read at one, so the executions tell how many reads were local. Clients
// pass the position they were answered at (Command.Seen), and a replica at
// that position serves the read: at least 90% of the reads must be local.
func TestReadsAreLocal(t *testing.T) {
	cfg := sweepConfig(3)
	cfg.Faults, cfg.Seed = "none", 3
	res, err := simtest.Check(cfg)
	require.NoError(t, err)
	require.Equal(t, res.Ops, res.OK)
	reads := 0
	for _, op := range res.History {
		if !op.Put {
			reads++
		}
	}
	local := (3*int64(res.Ops) - res.Executions) / 2
	t.Logf("%d of %d reads local (%d executions of %d commands)", local, reads, res.Executions, res.Ops)
	require.GreaterOrEqual(t, 10*local, 9*int64(reads), "reads were not served locally")
}

// TestSameSeedSameDigest checks that a seed replays the same run.
func TestSameSeedSameDigest(t *testing.T) {
	cfg := sweepConfig(5)
	cfg.Seed = 42
	a, err := simnet.Run(cfg)
	require.NoError(t, err)
	b, err := simnet.Run(cfg)
	require.NoError(t, err)
	require.Equal(t, a.Digest, b.Digest, "seed 42 replayed differently")
}

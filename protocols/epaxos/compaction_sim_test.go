package epaxos_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/simnet"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// TestSwarmSweepWithCompaction runs the swarm sweep with aggressive
// compaction: every replica checkpoints after every 3 (or 10) persisted
// records, forgets the instances every replica executed, and a crashed
// replica restarts from its last durable checkpoint, the state machine
// snapshot taken with it and the records after it. 100 seeds per setting,
// checked for the order contract, liveness and linearizability, and over
// every replica of every run for the agreement and visibility invariants.
func TestSwarmSweepWithCompaction(t *testing.T) {
	for _, every := range []int{3, 10} {
		for _, s := range []struct{ n, f, e int }{{3, 1, 1}, {5, 2, 2}} {
			t.Run(fmt.Sprintf("every=%d/n=%d,f=%d,e=%d", every, s.n, s.f, s.e), func(t *testing.T) {
				drainInvariants()
				cfg := sweepConfig(s.n, s.f, s.e)
				cfg.CompactEvery = every
				simtest.Sweep(t, cfg, 1, 100)
				runs, errs := drainInvariants()
				require.Equal(t, 100, runs, "every run's replicas must be collected")
				for _, err := range errs {
					t.Error(err)
				}
			})
		}
	}
}

// TestCompactionForgets checks that compaction does bound the instances a
// replica keeps: at the end of a fault-free run with checkpoints every 10
// records, every replica has forgotten most of its executed instances.
func TestCompactionForgets(t *testing.T) {
	drainInvariants()
	cfg := sweepConfig(3, 1, 1)
	cfg.Faults, cfg.Ops, cfg.CompactEvery, cfg.Seed = "none", 300, 10, 1
	res, err := simtest.Check(cfg)
	require.NoError(t, err)
	require.Equal(t, res.Ops, res.OK)
	collector.Lock()
	var kept []int
	for _, k := range collector.order {
		for _, r := range collector.groups[k] {
			kept = append(kept, len(r.Dots()))
		}
	}
	collector.Unlock()
	_, errs := drainInvariants()
	require.Empty(t, errs)
	t.Logf("instances kept per replica after %d operations: %v", cfg.Ops, kept)
	require.Len(t, kept, 3)
	for _, n := range kept {
		require.Less(t, n, 100, "instances kept per replica after 300 operations: %v", kept)
	}
}

// TestCompactionSweepRestartsFromCheckpoints makes sure the compaction
// sweep exercises what it is for: some replicas both compact their log and
// crash (and so restart from a checkpoint unless they crashed before their
// first one became durable).
func TestCompactionSweepRestartsFromCheckpoints(t *testing.T) {
	cfg := sweepConfig(5, 2, 2)
	cfg.CompactEvery = 3
	restarted := 0
	for seed := uint64(1); seed <= 20; seed++ {
		cfg.Seed = seed
		res, err := simnet.Run(cfg)
		require.NoError(t, err)
		for _, ns := range res.PerNode {
			if ns.Crashes > 0 && ns.Compactions > 0 {
				restarted++
			}
		}
	}
	drainInvariants()
	t.Logf("%d replicas crashed and had compacted their log", restarted)
	require.Positive(t, restarted)
}

package epaxos_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/blossom-dso/blossom/protocols/epaxos"
	"github.com/blossom-dso/blossom/simnet"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// sweepConfig is a small, contended swarm configuration: few clients, a
// couple of hot keys, 150 operations, so that 200 seeds stay fast and
// Porcupine answers at once.
func sweepConfig(n, f, e int) simnet.Config {
	return simnet.Config{
		Protocol: checkedName, Nodes: n, F: f, E: e, Clients: 4, Ops: 150, Keys: 2,
		Conflict: 60, Reads: 30, Size: 16, Latency: "uniform:1-4", Faults: "swarm",
	}
}

// settings are the (n, f, e) of the sweeps: the original EPaxos thresholds
// for n = 3, 5, 7 and one e below ⌈(f+1)/2⌉, which the generalization allows.
var settings = []struct{ n, f, e int }{{3, 1, 1}, {5, 2, 2}, {7, 3, 2}, {5, 2, 1}}

// TestSwarmSweep runs 200 seeds per setting under swarm faults (loss,
// duplication, reordering, partitions, clogged links, crash-stop,
// crash-restart — coordinators included, in the middle of their commands —
// and lost tails); every run is checked for the order contract, liveness
// after the faults heal and linearizability (Porcupine), and at the end of
// every run the agreement and visibility invariants are checked over all
// its replicas. 20 more seeds also round-trip each message through the
// codec.
func TestSwarmSweep(t *testing.T) {
	for _, s := range settings {
		t.Run(fmt.Sprintf("n=%d,f=%d,e=%d", s.n, s.f, s.e), func(t *testing.T) {
			drainInvariants()
			cfg := sweepConfig(s.n, s.f, s.e)
			simtest.Sweep(t, cfg, 1, 200)
			cfg.CodecCheck = true
			simtest.Sweep(t, cfg, 1001, 20)
			runs, errs := drainInvariants()
			require.Equal(t, 220, runs, "every run's replicas must be collected")
			for _, err := range errs {
				t.Error(err)
			}
			if len(errs) > 0 {
				// Name the seeds: rerun them one at a time.
				for seed := uint64(1); seed <= 200; seed++ {
					cfg.CodecCheck, cfg.Seed = false, seed
					_, _ = simnet.Run(cfg)
					if _, errs := drainInvariants(); len(errs) > 0 {
						t.Errorf("seed %d breaks the invariants: %v", seed, errs[0])
						break
					}
				}
			}
		})
	}
}

// TestNoConflictsAllFastPaths checks that without faults and conflicts every
// command commits on the fast path, at n = 5 and n = 7.
func TestNoConflictsAllFastPaths(t *testing.T) {
	for _, n := range []int{5, 7} {
		cfg := simnet.Config{Protocol: "epaxos", Nodes: n, Clients: 2 * n, Ops: 400, Conflict: 0, Faults: "none", Seed: 1}
		res, err := simtest.Check(cfg)
		require.NoError(t, err)
		require.Equal(t, res.Ops, res.OK)
		require.Equal(t, int64(res.Ops), res.FastPaths, "n=%d", n)
		require.Zero(t, res.SlowPaths, "n=%d", n)
	}
}

func TestSameSeedSameDigest(t *testing.T) {
	cfg := sweepConfig(5, 2, 2)
	cfg.Seed = 42
	a, err := simnet.Run(cfg)
	require.NoError(t, err)
	b, err := simnet.Run(cfg)
	require.NoError(t, err)
	require.Equal(t, a.Digest, b.Digest)
}

// TestPlanetThirteenSites runs EPaxos* with its default thresholds (f = 6,
// e = 4) over the 13 GCP regions with swarm faults, as the planet
// experiments do.
func TestPlanetThirteenSites(t *testing.T) {
	drainInvariants()
	cfg := simnet.Config{
		Protocol: checkedName, Nodes: 13, Clients: 13, Ops: 260, Keys: 2,
		Conflict: 50, Reads: 50, Latency: "planet:gcp", Faults: "swarm",
	}
	simtest.Sweep(t, cfg, 1, 40)
	_, errs := drainInvariants()
	for _, err := range errs {
		t.Error(err)
	}
}

// TestAckCrashSweep runs the sweep settings with the ack-crash fault
// (simtest.AckCrashFaults): replicas crash right after they answer a
// coordinator, the coordinator right after it next answers a client, and
// its commands are recovered from what the others made durable. The
// invariants are checked at the end of every run.
func TestAckCrashSweep(t *testing.T) {
	for _, s := range settings[:2] {
		t.Run(fmt.Sprintf("n=%d,f=%d,e=%d", s.n, s.f, s.e), func(t *testing.T) {
			drainInvariants()
			cfg := sweepConfig(s.n, s.f, s.e)
			cfg.Faults = simtest.AckCrashFaults
			simtest.Sweep(t, cfg, 1, 60)
			runs, errs := drainInvariants()
			require.Equal(t, 60, runs, "every run's replicas must be collected")
			for _, err := range errs {
				t.Error(err)
			}
		})
	}
}

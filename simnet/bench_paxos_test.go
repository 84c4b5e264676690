package simnet_test

import (
	"testing"

	_ "github.com/blossom-dso/blossom/protocols/paxos"
	"github.com/blossom-dso/blossom/simnet"
)

// TestPaxosSmoke runs Paxos briefly under swarm faults and checks it.
func TestPaxosSmoke(t *testing.T) {
	t.Parallel()
	latencies := []string{"uniform:1-3", "constant:1,jitter=50%", "planet:gcp", "planet:aws"}
	for seed := uint64(1); seed <= 16; seed++ {
		res, err := simnet.Run(simnet.Config{
			Protocol: "paxos", Nodes: 3 + 2*int(seed%3), Clients: 10, Ops: 400, Keys: 5,
			Conflict: 20, Reads: 50, Size: 16, Latency: latencies[seed%4], Faults: "swarm", Seed: seed, CodecCheck: seed%2 == 0,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := res.OrderError(); err != nil {
			t.Error(err)
		}
		if err := res.LivenessError(); err != nil {
			t.Errorf("%v\nfaults: %s\n%v", err, res.Faults, res.FaultLog)
		}
		if lin := res.CheckLinearizable(0); lin.Err() != nil {
			t.Errorf("seed %d: %v", seed, lin.Err())
		}
	}
}

// TestPaxosDeterministic runs one faulty Paxos configuration twice.
func TestPaxosDeterministic(t *testing.T) {
	t.Parallel()
	cfg := simnet.Config{
		Protocol: "paxos", Nodes: 5, Clients: 10, Ops: 500, Keys: 5, Conflict: 30, Reads: 50,
		Latency: "planet:gcp,jitter=10%", Faults: "swarm", Seed: 2024,
	}
	a, err := simnet.Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := simnet.Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest != b.Digest {
		t.Fatalf("seed %d: digests differ: %016x and %016x", cfg.Seed, a.Digest, b.Digest)
	}
}

package simnet_test

import (
	"testing"

	_ "github.com/blossom-dso/blossom/protocols/atlas"
	_ "github.com/blossom-dso/blossom/protocols/epaxos"
	_ "github.com/blossom-dso/blossom/protocols/mencius"
	_ "github.com/blossom-dso/blossom/protocols/paxos"
	_ "github.com/blossom-dso/blossom/protocols/skeen"
	_ "github.com/blossom-dso/blossom/protocols/whitebox-multicast"
	"github.com/blossom-dso/blossom/simnet"
)

// benchConfig is the benchmark workload: five replicas, no faults, 50
// clients and 20,000 operations, 10% of them on 10 shared keys.
func benchConfig(protocol string) simnet.Config {
	return simnet.Config{
		Protocol: protocol, Nodes: 5, Clients: 50, Ops: 20000, Keys: 10,
		Conflict: 10, Reads: 50, Size: 16, Latency: "constant:1", Seed: 1,
	}
}

// BenchmarkSimnetPaxos measures the simulator with Multi-Paxos.
func BenchmarkSimnetPaxos(b *testing.B) { simnet.RunBenchmark(b, benchConfig("paxos")) }

// BenchmarkSimnetFPaxos measures the simulator with Flexible Paxos.
func BenchmarkSimnetFPaxos(b *testing.B) { simnet.RunBenchmark(b, benchConfig("fpaxos")) }

// BenchmarkSimnetEPaxos measures the simulator with EPaxos.
func BenchmarkSimnetEPaxos(b *testing.B) { simnet.RunBenchmark(b, benchConfig("epaxos")) }

// BenchmarkSimnetAtlas measures the simulator with Atlas.
func BenchmarkSimnetAtlas(b *testing.B) { simnet.RunBenchmark(b, benchConfig("atlas")) }

// BenchmarkSimnetMencius measures the simulator with Mencius.
func BenchmarkSimnetMencius(b *testing.B) { simnet.RunBenchmark(b, benchConfig("mencius")) }

// BenchmarkSimnetWbcast measures the simulator with white-box atomic
// multicast as a single group of five.
func BenchmarkSimnetWbcast(b *testing.B) { simnet.RunBenchmark(b, benchConfig("wbcast")) }

// BenchmarkSimnetSkeen measures the simulator with Skeen's multicast as a
// single group of five.
func BenchmarkSimnetSkeen(b *testing.B) { simnet.RunBenchmark(b, benchConfig("skeen")) }

// BenchmarkSimnetWbcastGroups measures the simulator with white-box atomic
// multicast over three groups of three, each command to 1..3 groups.
func BenchmarkSimnetWbcastGroups(b *testing.B) {
	cfg := benchConfig("wbcast")
	cfg.Nodes, cfg.F, cfg.Groups = 9, 1, 3
	simnet.RunBenchmark(b, cfg)
}

// BenchmarkSimnetPaxosGCP measures the simulator with Multi-Paxos over the
// planet latencies of five GCP sites with 10% jitter, where events rarely
// share a time.
func BenchmarkSimnetPaxosGCP(b *testing.B) {
	cfg := benchConfig("paxos")
	cfg.Latency, cfg.Leader = "planet:gcp,jitter=10%", "best"
	simnet.RunBenchmark(b, cfg)
}

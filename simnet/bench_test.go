package simnet

import (
	"testing"
	"time"
)

// RunBenchmark runs cfg b.N times and reports simulated message deliveries
// per wall-clock second ("deliveries/s"), per second of CPU time used by the
// process ("deliveries/cpu-s", steadier on a loaded machine; with GC on
// other cores it can exceed the wall figure) and the messages per command. The
// protocol is looked up in the registry, so a benchmark in a package that
// imports a protocol measures that protocol.
func RunBenchmark(b *testing.B, cfg Config) {
	b.Helper()
	var deliveries, messages, ok int64
	var wall time.Duration
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		start := time.Now()
		res, err := Run(cfg)
		wall += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if !res.AllDone {
			b.Fatal(res.LivenessError())
		}
		deliveries += res.Deliveries
		messages += res.Messages
		ok += int64(res.OK)
	}
	cpu := cpuTime() - cpu0
	if wall > 0 {
		b.ReportMetric(float64(deliveries)/wall.Seconds(), "deliveries/s")
	}
	if cpu > 0 {
		b.ReportMetric(float64(deliveries)/cpu.Seconds(), "deliveries/cpu-s")
	}
	if ok > 0 {
		b.ReportMetric(float64(messages)/float64(ok), "msgs/cmd")
	}
}

// BenchmarkSimnetToy measures the simulator with the toy sequencer.
func BenchmarkSimnetToy(b *testing.B) {
	RunBenchmark(b, Config{
		Protocol: "toy-seq", Nodes: 5, Clients: 50, Ops: 20000, Keys: 10,
		Conflict: 10, Reads: 50, Size: 16, Latency: "constant:1", Seed: 1,
	})
}

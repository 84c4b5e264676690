package simnet

import (
	"runtime/metrics"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/internal/cputime"
)

// RunBenchmark runs cfg b.N times and reports simulated message deliveries
// per wall-clock second ("deliveries/s"), per second of CPU time used by the
// process ("deliveries/cpu-s", steadier on a loaded machine; with GC on
// other cores it can exceed the wall figure) and the messages per command. The
// protocol is looked up in the registry, so a benchmark in a package that
// imports a protocol measures that protocol.
//
// The CPU time is every thread's, user and system: the garbage collector's
// workers (with GOMAXPROCS above 1 an otherwise idle P runs an idle-priority
// mark worker during each cycle) and the kernel's work for the process (page
// faults of fresh heap, the scavenger's madvise) count. So that a change can
// be read against them, it also reports the GC's share of the CPU time the
// runtime accounts ("gc-%", runtime/metrics' /cpu/classes/gc/total over the
// total less idle time) and the system time's share of the process's CPU
// time ("sys-%").
func RunBenchmark(b *testing.B, cfg Config) {
	b.Helper()
	var deliveries, messages, ok int64
	var wall time.Duration
	b.ReportAllocs()
	gc0 := gcShare()
	user0, sys0 := cputime.Split()
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
	user1, sys1 := cputime.Split()
	gc1 := gcShare()
	cpu := user1 - user0 + sys1 - sys0
	if wall > 0 {
		b.ReportMetric(float64(deliveries)/wall.Seconds(), "deliveries/s")
	}
	if cpu > 0 {
		b.ReportMetric(float64(deliveries)/cpu.Seconds(), "deliveries/cpu-s")
		b.ReportMetric(100*float64(sys1-sys0)/float64(cpu), "sys-%")
	}
	if busy := gc1[1] - gc0[1]; busy > 0 {
		b.ReportMetric(100*(gc1[0]-gc0[0])/busy, "gc-%")
	}
	if ok > 0 {
		b.ReportMetric(float64(messages)/float64(ok), "msgs/cmd")
	}
}

// gcShare returns the CPU seconds the runtime accounts to the garbage
// collector and to all work but idling, so far.
func gcShare() [2]float64 {
	s := []metrics.Sample{
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/cpu/classes/total:cpu-seconds"},
		{Name: "/cpu/classes/idle:cpu-seconds"},
	}
	metrics.Read(s)
	for _, x := range s {
		if x.Value.Kind() != metrics.KindFloat64 {
			return [2]float64{}
		}
	}
	return [2]float64{s[0].Value.Float64(), s[1].Value.Float64() - s[2].Value.Float64()}
}

// BenchmarkSimnetToy measures the simulator with the toy sequencer.
func BenchmarkSimnetToy(b *testing.B) {
	RunBenchmark(b, Config{
		Protocol: "toy-seq", Nodes: 5, Clients: 50, Ops: 20000, Keys: 10,
		Conflict: 10, Reads: 50, Size: 16, Latency: "constant:1", Seed: 1,
	})
}

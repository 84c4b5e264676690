package simnet_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/blossom-dso/blossom/protocols/sequential"
	_ "github.com/blossom-dso/blossom/protocols/weak"
	"github.com/blossom-dso/blossom/simnet"
)

// updateDigests rewrites testdata/digests.txt from the current code.
var updateDigests = flag.Bool("update-digests", false, "rewrite testdata/digests.txt")

// digestScenario is one workload of the digest table: a configuration that
// every protocol of the table runs with each seed.
type digestScenario struct {
	name string
	cfg  simnet.Config
	// multicast marks a scenario that only the multicast protocols run.
	multicast bool
}

// digestScenarios cover what the simulator's hot paths do: the benchmark's
// fault-free constant latency, drawn faults over random and planet
// latencies, the codec round trip, compaction and restarts from
// checkpoints, the ack-crash fault, and multicast over several groups.
func digestScenarios() []digestScenario {
	base := simnet.Config{Nodes: 5, Clients: 10, Ops: 300, Keys: 5, Conflict: 20, Reads: 50, Size: 16}
	with := func(f func(*simnet.Config)) simnet.Config {
		c := base
		f(&c)
		return c
	}
	return []digestScenario{
		{name: "bench", cfg: with(func(c *simnet.Config) {
			c.Clients, c.Ops, c.Keys, c.Conflict, c.Latency = 50, 1000, 10, 10, "constant:1"
		})},
		{name: "swarm-uniform-codec", cfg: with(func(c *simnet.Config) { c.Latency, c.Faults, c.CodecCheck = "uniform:1-3", "swarm", true })},
		{name: "swarm-gcp-compact", cfg: with(func(c *simnet.Config) {
			c.Latency, c.Faults, c.CompactEvery, c.Leader = "planet:gcp,jitter=10%", "swarm", 40, "best"
		})},
		{name: "crashes-jitter", cfg: with(func(c *simnet.Config) {
			c.Nodes, c.Latency, c.Faults, c.CompactEvery = 3, "constant:1,jitter=50%", "crash-restart,lost-tail,loss=2%,dup=2%,reorder", 25
		})},
		{name: "ackcrash", cfg: with(func(c *simnet.Config) { c.Latency, c.Faults = "uniform:1-2", "swarm,ack-crash" })},
		{name: "groups", multicast: true, cfg: with(func(c *simnet.Config) {
			c.Nodes, c.F, c.Groups, c.Latency, c.Faults = 0, 1, 3, "uniform:1-3", "swarm"
		})},
	}
}

// digestProtocols are the protocols of the digest table.
var digestProtocols = []string{"paxos", "fpaxos", "epaxos", "atlas", "mencius", "wbcast", "skeen", "sequential", "weak"}

// digestLine runs cfg and describes the run in one line: its digest and
// counters, or its error.
func digestLine(name string, cfg simnet.Config) string {
	head := fmt.Sprintf("%s %s seed=%d", cfg.Protocol, name, cfg.Seed)
	res, err := simnet.Run(cfg)
	if err != nil {
		first, _, _ := strings.Cut(err.Error(), "\n")
		return head + " error: " + first
	}
	return fmt.Sprintf("%s digest=%016x deliveries=%d messages=%d dropped=%d dup=%d executions=%d ok=%d info=%d duration=%d",
		head, res.Digest, res.Deliveries, res.Messages, res.Dropped, res.Duplicated, res.Executions, res.OK, res.Info, res.Duration)
}

// TestDigestsUnchanged runs every protocol on every scenario with several
// seeds and compares each run's digest and counters with
// testdata/digests.txt, written by an earlier build: a change that should
// leave runs bit-identical (a faster event queue, fewer allocations) must
// leave every line as it was. Rewrite the file with -update-digests only
// when a change of the runs is intended.
func TestDigestsUnchanged(t *testing.T) {
	t.Parallel()
	type job struct {
		i    int
		name string
		cfg  simnet.Config
	}
	var jobs []job
	for _, sc := range digestScenarios() {
		for _, p := range digestProtocols {
			if sc.multicast && p != "wbcast" && p != "skeen" {
				continue
			}
			for seed := uint64(1); seed <= 4; seed++ {
				cfg := sc.cfg
				cfg.Protocol, cfg.Seed = p, seed
				if p == "fpaxos" && cfg.Nodes == 5 {
					cfg.F = 1 // flexible quorums of 4 and 2 (with F=2 they are majorities)
				}
				jobs = append(jobs, job{i: len(jobs), name: sc.name, cfg: cfg})
			}
		}
	}
	got := make([]string, len(jobs))
	var wg sync.WaitGroup
	ch := make(chan job)
	for range 2 {
		wg.Go(func() {
			for j := range ch {
				got[j.i] = digestLine(j.name, j.cfg)
			}
		})
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()

	path := filepath.Join("testdata", "digests.txt")
	text := strings.Join(got, "\n") + "\n"
	if *updateDigests {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (write it with -update-digests)", err)
	}
	want := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(want) != len(got) {
		t.Fatalf("%d runs, %s lists %d", len(got), path, len(want))
	}
	bad := 0
	for i := range got {
		if got[i] != want[i] {
			bad++
			t.Errorf("run changed:\n got: %s\nwant: %s", got[i], want[i])
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d runs changed", bad, len(got))
	}
}

package wbcast_test

import (
	"fmt"
	"testing"

	_ "github.com/blossom-dso/blossom/protocols/whitebox-multicast"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// TestMulticast runs the multicast suite of simtest: swarm sweeps over 3 to
// 5 groups with every multicast, order, liveness and linearizability check,
// determinism, and a fault-free run.
func TestMulticast(t *testing.T) {
	simtest.MulticastSuite(t, "wbcast")
}

// TestCompactionSweep runs the multicast swarm sweep with aggressive log
// compaction: every node checkpoints after every 3 (or 10) records, prunes
// what its checkpoint covers, and a crash-restarted node starts from its
// last durable checkpoint and the records after it. 100 seeds per setting
// over 3 to 5 groups, every run checked like the multicast suite.
func TestCompactionSweep(t *testing.T) {
	for _, every := range []int{3, 10} {
		for _, c := range []struct{ groups, seeds int }{{3, 50}, {4, 30}, {5, 20}} {
			t.Run(fmt.Sprintf("every=%d/groups=%d", every, c.groups), func(t *testing.T) {
				cfg := simtest.MulticastConfig("wbcast", c.groups, 0)
				cfg.CompactEvery = every
				simtest.Sweep(t, cfg, 1, c.seeds)
			})
		}
	}
}

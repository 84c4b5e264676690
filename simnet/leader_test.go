package simnet_test

import (
	"strconv"
	"testing"

	"github.com/blossom-dso/blossom/simnet"
)

// Leader placement: with Leader set to node k, paxos-family runs end with k
// leading (no fault unseats it), and "best" picks BestLeader's node, whose
// mean latency is at most that of every other placement's median.
func TestLeaderPlacement(t *testing.T) {
	base := simnet.Config{
		Protocol: "fpaxos", Nodes: 5, F: 1, Clients: 10, Ops: 200, Keys: 10, Reads: 50,
		Latency: "planet:gcp", Faults: "none", Seed: 1,
	}
	means := make([]float64, base.Nodes+1)
	for k := 1; k <= base.Nodes; k++ {
		c := base
		c.Leader = strconv.Itoa(k)
		res, err := simnet.Run(c)
		if err != nil {
			t.Fatalf("seed %d leader %d: %v", c.Seed, k, err)
		}
		if int(res.Leader) != k {
			t.Fatalf("seed %d: leader placed at %d, node %d led", c.Seed, k, res.Leader)
		}
		means[k] = res.Overall.Mean
	}
	best, err := simnet.BestLeader(base)
	if err != nil {
		t.Fatal(err)
	}
	c := base
	c.Leader = "best"
	res, err := simnet.Run(c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Leader != best || res.Overall.Mean != means[best] {
		t.Fatalf("best: node %d led with mean %.1f ms; BestLeader %d, its mean %.1f ms", res.Leader, res.Overall.Mean, best, means[best])
	}
	t.Logf("means by leader node: %v; best %d", means[1:], best)
	below := 0
	for k := 1; k <= base.Nodes; k++ {
		if means[best] <= means[k] {
			below++
		}
	}
	if below < (base.Nodes+1)/2 {
		t.Errorf("best leader %d: mean %.1f ms is above most placements: %v", best, means[best], means[1:])
	}
	for _, bad := range []string{"0", "6", "x"} {
		c := base
		c.Leader = bad
		if _, err := simnet.Run(c); err == nil {
			t.Errorf("leader %q accepted", bad)
		}
	}
}

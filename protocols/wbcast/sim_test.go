package wbcast_test

import (
	"testing"

	_ "github.com/blossom-dso/blossom/protocols/wbcast"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// TestMulticast runs the multicast suite of simtest: swarm sweeps over 3 to
// 5 groups with every multicast, order, liveness and linearizability check,
// determinism, and a fault-free run.
func TestMulticast(t *testing.T) {
	simtest.MulticastSuite(t, "wbcast")
}

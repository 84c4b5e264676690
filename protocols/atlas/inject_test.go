//go:build injectfuzz

// These tests are known to fail today (issue 16, part 2): forged messages
// panic wbcast and skeen, stall paxos and epaxos, and break atlas's order.
// Run them with: go test -tags injectfuzz -run TestForgedMessages ./protocols/atlas/

package atlas

import (
	"testing"

	"github.com/blossom-dso/blossom/simnet"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// TestForgedMessages injects gofuzz-filled messages of every type
// (simtest.Forger: random field values, node ids real, 0 or unknown) into
// a running cluster under swarm faults, amid the real traffic: no replica
// panics and every run passes the order, liveness (after the injection
// stops) and linearizability checks.
func TestForgedMessages(t *testing.T) {
	simtest.InjectForged(t, simnet.Config{Protocol: "atlas", Nodes: 5, F: 2, Clients: 4, Ops: 150, Keys: 2, Conflict: 60, Reads: 30, Size: 16, Latency: "uniform:1-4", Faults: "swarm"}, sampleMessages(), 1, 10)
}

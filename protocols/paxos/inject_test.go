// TestForgedMessages (issue 16, part 2) checks that paxos survives forged
// messages from buggy or mismatched peers.

package paxos

import (
	"math/rand/v2"
	"testing"

	"github.com/blossom-dso/blossom/protocols"

	"github.com/blossom-dso/blossom/simnet"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// TestForgedMessages injects gofuzz-filled messages of every type
// (simtest.Forger: random field values, node ids real, 0 or unknown) into
// a running cluster under swarm faults, amid the real traffic: no replica
// panics and every run passes the order, liveness (after the injection
// stops) and linearizability checks. A forged CatchUp carries no ballot
// and would install chosen values: it is confined to slots out of range
// (a mismatched peer's numbering), which the replica must drop.
func TestForgedMessages(t *testing.T) {
	simtest.InjectForged(t, simnet.Config{Protocol: "paxos", Nodes: 5, F: 2, Clients: 8, Ops: 400, Keys: 3, Conflict: 60, Reads: 40, Size: 16, Latency: "uniform:1-4", Faults: "swarm"}, sampleMessages(), 1, 10, confine)
}

// confine moves the first chosen slot of a forged CatchUp beyond any
// replica's window (from 2^40 on).
func confine(r *rand.Rand, m protocols.Message) protocols.Message {
	if c, ok := m.(CatchUp); ok && len(c.Chosen) > 0 {
		c.Chosen[0].Slot = 1<<40 + r.Uint64()>>1
		return c
	}
	return m
}

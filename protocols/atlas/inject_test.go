// TestForgedMessages (issue 16, part 2) checks that atlas survives forged
// messages from buggy or mismatched peers.

package atlas

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
// stops) and linearizability checks. A forged message with no ballot or at
// the zero ballot (a collect, a commit, the initial coordinator's
// consensus) would be a lie about a real instance that nothing tells from
// the truth: it is confined to sequence numbers out of range (a mismatched
// peer's numbering), which the replica must drop.
func TestForgedMessages(t *testing.T) {
	simtest.InjectForged(t, simnet.Config{Protocol: "atlas", Nodes: 5, F: 2, Clients: 4, Ops: 150, Keys: 2, Conflict: 60, Reads: 30, Size: 16, Latency: "uniform:1-4", Faults: "swarm"}, sampleMessages(), 1, 10, confine)
}

// confine moves the dot of a forged message with no ballot or at the zero
// ballot, and the prefixes of a forged MExecuted, beyond any replica's
// horizon (from 2^40 on).
func confine(r *rand.Rand, m protocols.Message) protocols.Message {
	far := func(d *Dot) { d.Seq = 1<<40 + r.Uint64()>>1 }
	switch m := m.(type) {
	case MCollect:
		far(&m.Dot)
		return m
	case MCollectAck:
		far(&m.Dot)
		return m
	case MCommit:
		far(&m.Dot)
		return m
	case MConsensus:
		if m.Ballot.IsZero() {
			far(&m.Dot)
		}
		return m
	case MConsensusAck:
		if m.Ballot.IsZero() {
			far(&m.Dot)
		}
		return m
	case MRec:
		if m.Ballot.IsZero() {
			far(&m.Dot)
		}
		return m
	case MRecAck:
		if m.Ballot.IsZero() {
			far(&m.Dot)
		}
		return m
	case MExecuted:
		for i := range m.Prefix {
			m.Prefix[i] = 1<<40 + r.Uint64()>>1
		}
		return m
	}
	return m
}

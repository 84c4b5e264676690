// TestForgedMessages (issue 16, part 2) checks that mencius survives forged
// messages from buggy or mismatched peers.

package mencius

import (
	"math/rand/v2"
	"testing"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/simnet"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// TestForgedMessages injects gofuzz-filled messages of every type
// (simtest.Forger: random field values, node ids real, 0 or unknown,
// foreign ballots) into a running cluster under swarm faults, amid the
// real traffic: no replica panics and every run passes the order, liveness
// (after the injection stops) and linearizability checks. A forged
// message without a ballot (a skip, a catch-up request, a value known
// chosen) would be a lie about real slots that nothing tells from the
// truth: it is confined to slots out of range (a mismatched peer's
// numbering), which the replica must drop.
func TestForgedMessages(t *testing.T) {
	simtest.InjectForged(t, simnet.Config{Protocol: "mencius", Nodes: 5, F: 2, Clients: 4, Ops: 150, Keys: 2, Conflict: 60, Reads: 30, Size: 16, Latency: "uniform:1-4", Faults: "swarm"}, sampleMessages(), 1, 10, confine)
}

// confine moves the slots of a forged message's ballotless parts beyond
// any replica's horizon (from 2^40 on): the skip range of a Skip or an
// AcceptOK, the range of a CatchUpReq, the values a CatchUp reports chosen
// (zero ballot).
func confine(r *rand.Rand, m protocols.Message) protocols.Message {
	far := func(s *uint64) { *s = 1<<40 + r.Uint64()>>1 }
	switch m := m.(type) {
	case Skip:
		far(&m.From)
		far(&m.To)
		return m
	case AcceptOK:
		far(&m.SkipFrom)
		far(&m.SkipTo)
		return m
	case CatchUpReq:
		far(&m.From)
		far(&m.To)
		return m
	case CatchUp:
		for i := range m.Chosen {
			if m.Chosen[i].Ballot.IsZero() {
				far(&m.Chosen[i].Slot)
			}
		}
		return m
	}
	return m
}

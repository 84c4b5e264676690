// TestForgedMessages (issue 16, part 2) checks that epaxos survives forged
// messages from buggy or mismatched peers.

package epaxos

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
// stops) and linearizability checks. A forged message at the zero ballot
// (the initial coordinator's) or with no ballot would be a lie about a
// real instance that nothing tells from the truth: it is confined to
// sequence numbers out of range (a mismatched peer's numbering), which the
// replica must drop.
func TestForgedMessages(t *testing.T) {
	simtest.InjectForged(t, simnet.Config{Protocol: "epaxos", Nodes: 5, F: 2, E: 2, Clients: 4, Ops: 150, Keys: 2, Conflict: 60, Reads: 30, Size: 16, Latency: "uniform:1-4", Faults: "swarm"}, sampleMessages(), 1, 10, confine)
}

// confine moves the dot of a forged message at the zero ballot or with no
// ballot, and the sequence number of a forged Heartbeat, beyond any
// replica's horizon (from 2^40 on).
func confine(r *rand.Rand, m protocols.Message) protocols.Message {
	far := func(d *Dot) { d.Seq = 1<<40 + r.Uint64()>>1 }
	switch m := m.(type) {
	case PreAccept:
		far(&m.Dot)
		return m
	case PreAcceptOK:
		far(&m.Dot)
		return m
	case Waiting:
		far(&m.Dot)
		return m
	case Heartbeat:
		m.Seq = 1<<40 + r.Uint64()>>1
		return m
	case Accept:
		if m.Ballot.IsZero() {
			far(&m.Dot)
		}
		return m
	case AcceptOK:
		if m.Ballot.IsZero() {
			far(&m.Dot)
		}
		return m
	case Commit:
		if m.Ballot.IsZero() {
			far(&m.Dot)
		}
		return m
	case Recover:
		if m.Ballot.IsZero() {
			far(&m.Dot)
		}
		return m
	case RecoverOK:
		if m.Ballot.IsZero() {
			far(&m.Dot)
		}
		return m
	case Nack:
		if m.Ballot.IsZero() {
			far(&m.Dot)
		}
		return m
	case Validate:
		if m.Ballot.IsZero() {
			far(&m.Dot)
		}
		return m
	case ValidateOK:
		if m.Ballot.IsZero() {
			far(&m.Dot)
		}
		return m
	}
	return m
}

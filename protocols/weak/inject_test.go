package weak

import (
	"math/rand/v2"
	"testing"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/simnet"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// TestForgedMessages (issue 16, part 2) injects gofuzz-filled updates and
// digests (simtest.Forger: random field values, node ids real, 0 or
// unknown) into a running cluster under swarm faults, amid the real
// traffic: no replica panics and every run passes the weak contract's
// checks and liveness after the injection stops.
func TestForgedMessages(t *testing.T) {
	cfg := simnet.Config{
		Protocol: "weak", Nodes: 3, F: 1, Clients: 8, Ops: 3000, Keys: 3,
		Conflict: 70, Reads: 50, Size: 16, Latency: "uniform:1-4", Faults: "swarm",
	}
	samples := []protocols.Message{
		Update{Origin: 1, Seq: 1, Stamp: Stamp{Time: 1, Node: 1}, Cmd: protocols.Command{Keys: []string{"k0"}, Payload: []byte{1}}},
		Digest{Have: []uint64{1, 2, 3}},
	}
	simtest.InjectForged(t, cfg, samples, 1, 10, confine)
}

// confine keeps forged updates out of the positions an honest origin
// could fill: an update of a real origin at a plausible position cannot
// be told from the truth (the strategy trusts its peers), so a forged one
// names an unknown origin or a position far beyond any real one.
func confine(r *rand.Rand, m protocols.Message) protocols.Message {
	if u, ok := m.(Update); ok {
		if u.Origin >= 1 && u.Origin <= 3 {
			u.Seq |= 1 << 40
		}
		return u
	}
	return m
}

// TestForgedMessages (issue 16, part 2) checks that wbcast survives forged
// messages from buggy or mismatched peers.

package wbcast

import (
	"math/rand/v2"
	"testing"

	"github.com/blossom-dso/blossom/protocols"

	"github.com/blossom-dso/blossom/simnet/simtest"
)

// TestForgedMessages injects gofuzz-filled messages of every type
// (simtest.Forger: random field values, node ids real, 0 or unknown) into
// a running cluster under swarm faults, amid the real traffic: no replica
// panics and every run passes the order, liveness (after the injection
// stops) and linearizability checks.
func TestForgedMessages(t *testing.T) {
	simtest.InjectForged(t, simtest.MulticastConfig("wbcast", 3, 0), sampleMessages(), 1, 10, confine)
}

// confine forges no Multicast: it relays a client's command, which the
// protocol orders as the client's, so a forged one would be a delivery no
// client multicast (the integrity check), a lie no receiver can detect.
func confine(_ *rand.Rand, m protocols.Message) protocols.Message {
	if _, ok := m.(Multicast); ok {
		return nil
	}
	return m
}

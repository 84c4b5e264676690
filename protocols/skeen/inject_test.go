//go:build injectfuzz

// These tests are known to fail today (issue 16, part 2): forged messages
// panic wbcast and skeen, stall paxos and epaxos, and break atlas's order.
// Run them with: go test -tags injectfuzz -run TestForgedMessages ./protocols/skeen/

package skeen

import (
	"testing"

	"github.com/blossom-dso/blossom/simnet/simtest"
)

// TestForgedMessages injects gofuzz-filled messages of every type
// (simtest.Forger: random field values, node ids real, 0 or unknown) into
// a running cluster under swarm faults, amid the real traffic: no replica
// panics and every run passes the order, liveness (after the injection
// stops) and linearizability checks.
func TestForgedMessages(t *testing.T) {
	simtest.InjectForged(t, simtest.MulticastConfig("skeen", 3, 0), sampleMessages(), 1, 10)
}

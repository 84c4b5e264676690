package skeen

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// TestEmbeddedPaxosHasNoStateTransfer pins the decision in the package
// doc: the embedded Paxos instance cannot transfer state, so it neither
// sends nor installs snapshots (a process behind its group's retention
// window stays behind).
func TestEmbeddedPaxosHasNoStateTransfer(t *testing.T) {
	var env protocols.Env = paxEnv{}
	_, ok := env.(protocols.StateTransfer)
	require.False(t, ok, "skeen's paxos Env offers state transfer: the package doc and the multicast agreement check must be revisited")
}

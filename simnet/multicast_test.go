package simnet_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/blossom-dso/blossom/protocols/paxos"
	"github.com/blossom-dso/blossom/simnet"
)

func TestMulticastConfigValidation(t *testing.T) {
	base := simnet.Config{Protocol: "paxos", Groups: 3, F: 1, Ops: 10}
	require.NoError(t, base.Validate())
	for name, c := range map[string]simnet.Config{
		"nodes not groups*(2f+1)": {Protocol: "paxos", Groups: 3, F: 1, Nodes: 8, Ops: 10},
		"dest above groups":       {Protocol: "paxos", Groups: 3, Dest: 4, Ops: 10},
		"dest without groups":     {Protocol: "paxos", Nodes: 3, Dest: 1, Ops: 10},
	} {
		err := c.Validate()
		require.Error(t, err, name)
		require.True(t, errors.Is(err, simnet.ErrConfig), name)
	}
}

func TestGroupOfParsesKeys(t *testing.T) {
	require.EqualValues(t, 3, simnet.GroupOf("g3/k1"))
	require.EqualValues(t, 12, simnet.GroupOf("g12/c4"))
	require.EqualValues(t, 0, simnet.GroupOf("k1"))
	require.EqualValues(t, 0, simnet.GroupOf("gx/k1"))
}

// TestMulticastChecksCatchANonGenuineProtocol runs Paxos, which replicates
// every command everywhere, as if it were a multicast protocol: replicas
// outside a command's destination groups deliver it, which the integrity
// check must report, while the run itself stays live.
func TestMulticastChecksCatchANonGenuineProtocol(t *testing.T) {
	res, err := simnet.Run(simnet.Config{Protocol: "paxos", Groups: 2, F: 1, Clients: 4, Ops: 100, Seed: 1})
	require.NoError(t, err)
	require.True(t, res.AllDone)
	require.Equal(t, 2, res.Groups)
	require.Error(t, res.MulticastError())
	require.Contains(t, strings.Join(res.MulticastViolations, "\n"), "integrity")
	require.Positive(t, res.LeaderDeliveries, "paxos reports its leader, so leader deliveries are timed")
}

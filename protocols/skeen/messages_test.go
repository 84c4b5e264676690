package skeen

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/codectest"
	"github.com/blossom-dso/blossom/protocols/mcast"
	"github.com/blossom-dso/blossom/protocols/paxos"
)

func sampleMessages() []protocols.Message {
	c := protocols.Command{ID: protocols.CommandID{Client: 1, Seq: 2}, Keys: []string{"g0/k1", "g2/k1"}, Payload: []byte("put")}
	return []protocols.Message{
		Multicast{Cmd: c},
		Stamp{Group: 2, LTS: mcast.TS{Counter: 41, Group: 2}, Cmd: c},
		Stamp{Group: 0, LTS: mcast.TS{Counter: 1}, Cmd: c, Reply: true},
		Pax{Inner: paxos.Accept{Ballot: ballot.Ballot{Round: 3, Node: 2}, Slot: 9, Cmds: []protocols.Command{c}, Commit: 8}},
		Pax{Inner: paxos.Commit{Ballot: ballot.Ballot{Round: 1, Node: 1}, Commit: 4}},
	}
}

func TestCodecRoundTripsEveryMessage(t *testing.T) {
	codectest.RoundTrip(t, Codec{}, sampleMessages())
}

func TestCodecRejectsUnknownTypes(t *testing.T) {
	_, err := Codec{}.Marshal(nil, "not a skeen message")
	require.Error(t, err)
	_, err = Codec{}.Marshal(nil, Pax{Inner: "not a paxos message"})
	require.Error(t, err)
	_, err = Codec{}.Unmarshal([]byte{0xff})
	require.Error(t, err)
	_, err = Codec{}.Unmarshal(nil)
	require.Error(t, err)
}

func TestStepEncodingRoundTrips(t *testing.T) {
	s := step{From: 3, LTS: mcast.TS{Counter: 9, Group: 3}, Cmd: sampleMessages()[0].(Multicast).Cmd}
	got, err := decodeStep(encodeStep(s))
	require.NoError(t, err)
	require.Equal(t, s, got)
	_, err = decodeStep([]byte{0xff})
	require.Error(t, err)
}

// FuzzDecode checks that Unmarshal never panics and that whatever it accepts
// re-encodes to a message that decodes to the same value.
func FuzzDecode(f *testing.F) {
	codectest.FuzzDecode(f, Codec{}, sampleMessages())
}

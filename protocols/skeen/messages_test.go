package skeen

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/paxos"
)

func sampleMessages() []protocols.Message {
	c := protocols.Command{ID: protocols.CommandID{Client: 1, Seq: 2}, Keys: []string{"g0/k1", "g2/k1"}, Payload: []byte("put")}
	return []protocols.Message{
		Multicast{Cmd: c},
		Stamp{Group: 2, LTS: TS{Counter: 41, Group: 2}, Cmd: c},
		Stamp{Group: 0, LTS: TS{Counter: 1}, Cmd: c, Reply: true},
		Pax{Inner: paxos.Accept{Ballot: ballot.Ballot{Round: 3, Node: 2}, Slot: 9, Cmds: []protocols.Command{c}, Commit: 8}},
		Pax{Inner: paxos.Commit{Ballot: ballot.Ballot{Round: 1, Node: 1}, Commit: 4}},
	}
}

func TestCodecRoundTripsEveryMessage(t *testing.T) {
	for _, m := range sampleMessages() {
		b, err := Codec{}.Marshal(nil, m)
		require.NoError(t, err)
		got, err := Codec{}.Unmarshal(b)
		require.NoError(t, err, "%T", m)
		require.Equal(t, m, got)
		for i := 0; i < len(b); i++ {
			_, err := Codec{}.Unmarshal(b[:i])
			require.Error(t, err, "%T truncated to %d bytes", m, i)
		}
		_, err = Codec{}.Unmarshal(append(b, 0))
		require.Error(t, err, "%T with a trailing byte", m)
	}
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
	s := step{From: 3, LTS: TS{Counter: 9, Group: 3}, Cmd: sampleMessages()[0].(Multicast).Cmd}
	got, err := decodeStep(encodeStep(s))
	require.NoError(t, err)
	require.Equal(t, s, got)
	_, err = decodeStep([]byte{0xff})
	require.Error(t, err)
}

func encodedSamples(t testing.TB) [][]byte {
	var out [][]byte
	for _, m := range sampleMessages() {
		b, err := Codec{}.Marshal(nil, m)
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

// FuzzDecode checks that Unmarshal never panics and that whatever it accepts
// re-encodes to a message that decodes to the same value.
func FuzzDecode(f *testing.F) {
	for _, b := range encodedSamples(f) {
		f.Add(b)
	}
	fuzzseed.Check(f, "FuzzDecode", encodedSamples(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Codec{}.Unmarshal(b)
		if err != nil {
			return
		}
		b2, err := Codec{}.Marshal(nil, m)
		require.NoError(t, err)
		m2, err := Codec{}.Unmarshal(b2)
		require.NoError(t, err)
		require.Equal(t, m, m2)
	})
}

package paxos

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
)

// sampleMessages has one value of every message type, with the optional
// fields filled.
func sampleMessages() []protocols.Message {
	b := ballot.Ballot{Round: 7, Node: 3}
	cmds := []protocols.Command{
		{ID: protocols.CommandID{Client: 1, Seq: 2}, Keys: []string{"k1"}, Payload: []byte("put")},
		{ID: protocols.CommandID{Client: 9, Seq: 1 << 40}, Keys: []string{"a", "b"}},
	}
	acc := []Accepted{{Slot: 4, Ballot: b, Cmds: cmds}, {Slot: 5, Ballot: ballot.Ballot{Round: 1, Node: 1}}}
	return []protocols.Message{
		Prepare{Ballot: b, From: 12},
		Promise{Ballot: b, From: 4, Accepted: acc},
		Promise{Ballot: b, From: 1},
		Nack{Promised: b},
		Accept{Ballot: b, Slot: 99, Cmds: cmds, Commit: 98},
		Accept{Ballot: b, Slot: 100},
		AcceptOK{Ballot: b, Slot: 99},
		Commit{Ballot: b, Commit: 1000},
		CatchUpReq{From: 17},
		CatchUp{Chosen: acc},
		Forward{Cmds: cmds},
	}
}

func TestCodecRoundTripsEveryMessage(t *testing.T) {
	for _, m := range sampleMessages() {
		b, err := Codec{}.Marshal(nil, m)
		require.NoError(t, err)
		got, err := Codec{}.Unmarshal(b)
		require.NoError(t, err, "%T", m)
		require.Equal(t, m, got)
		// Every strict prefix is truncated input and must be rejected.
		for i := 0; i < len(b); i++ {
			_, err := Codec{}.Unmarshal(b[:i])
			require.Error(t, err, "%T truncated to %d bytes", m, i)
		}
		// Trailing garbage is rejected too.
		_, err = Codec{}.Unmarshal(append(b, 0))
		require.Error(t, err, "%T with a trailing byte", m)
	}
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

func TestCodecRejectsUnknownTypes(t *testing.T) {
	_, err := Codec{}.Marshal(nil, "not a paxos message")
	require.Error(t, err)
	_, err = Codec{}.Unmarshal([]byte{0xff})
	require.Error(t, err)
	// A count far larger than the frame must fail without allocating it.
	_, err = Codec{}.Unmarshal([]byte{tagForward, 0xff, 0xff, 0xff, 0xff, 0x0f})
	require.Error(t, err)
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

// FuzzRecover checks that arbitrary durable records never make a restart
// panic: they are either replayed or rejected with an error.
func FuzzRecover(f *testing.F) {
	b := ballot.Ballot{Round: 2, Node: 1}
	seeds := [][]byte{promiseRecord(b), acceptRecord(3, b, sampleMessages()[4].(Accept).Cmds)}
	for _, s := range seeds {
		f.Add(s)
	}
	fuzzseed.Check(f, "FuzzRecover", seeds)
	f.Fuzz(func(t *testing.T, rec []byte) {
		r := &Replica{}
		_ = r.recover([][]byte{rec}) // must not panic or exhaust memory
	})
}

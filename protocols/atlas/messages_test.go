package atlas

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/codectest"
)

func sampleMessages() []protocols.Message {
	b := ballot.Ballot{Round: 3, Node: 2}
	cmd := protocols.Command{ID: protocols.CommandID{Client: 4, Seq: 1 << 33}, Keys: []string{"k", "x"}, Payload: []byte("put")}
	deps := []Dot{{Node: 1, Seq: 7}, {Node: 3, Seq: 1 << 40}}
	q := []protocols.NodeID{1, 2, 3}
	d := Dot{Node: 2, Seq: 9}
	return []protocols.Message{
		MCollect{Dot: d, Cmd: cmd, Past: deps, Quorum: q},
		MCollect{Dot: d, Cmd: protocols.Command{ID: cmd.ID}},
		MCollectAck{Dot: d, Deps: deps},
		MCollectAck{Dot: d},
		MConsensus{Dot: d, Ballot: b, Cmd: cmd, Deps: deps},
		MConsensus{Dot: d, Ballot: b, Nop: true},
		MConsensusAck{Dot: d, Ballot: b},
		MCommit{Dot: d, Cmd: cmd, Deps: deps},
		MCommit{Dot: d, Nop: true},
		MRec{Dot: d, Ballot: b, HasCmd: true, Cmd: cmd},
		MRec{Dot: d, Ballot: b},
		MRecAck{Dot: d, Ballot: b, HasCmd: true, Cmd: cmd, Collected: true, Deps: deps, Quorum: q, ABal: b, Nop: true, Amnesiac: true},
		MRecAck{Dot: d, Ballot: b},
		MExecuted{Prefix: []uint64{1, 0, 1 << 50}},
	}
}

func TestCodecRoundTripsEveryMessage(t *testing.T) {
	codectest.RoundTrip(t, Codec{}, sampleMessages())
}

func TestCodecRejectsUnknownTypes(t *testing.T) {
	_, err := Codec{}.Marshal(nil, "not an atlas message")
	require.Error(t, err)
	_, err = Codec{}.Unmarshal([]byte{0xff})
	require.Error(t, err)
	_, err = Codec{}.Unmarshal([]byte{tagCollectAck, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	require.Error(t, err)
}

// FuzzDecode checks that Unmarshal never panics and that whatever it
// accepts re-encodes to a message that decodes to the same value.
func FuzzDecode(f *testing.F) {
	codectest.FuzzDecode(f, Codec{}, sampleMessages())
}

func recordSeeds() [][]byte {
	in := &instance{dot: Dot{Node: 1, Seq: 2}, phase: phCommit, hasCmd: true,
		cmd:       protocols.Command{ID: protocols.CommandID{Client: 1, Seq: 1}, Keys: []string{"k"}},
		collected: true, cdeps: []Dot{{Node: 2, Seq: 1}}, quorum: []protocols.NodeID{1, 2},
		bal: ballot.Ballot{Round: 1, Node: 2}, abal: ballot.Ballot{Round: 1, Node: 2}, adeps: []Dot{{Node: 2, Seq: 1}}}
	return [][]byte{stateRecord(in), stateRecord(&instance{dot: Dot{Node: 3, Seq: 1}})}
}

// FuzzRecover checks that arbitrary durable records never make a restart
// panic: they are replayed or rejected with an error.
func FuzzRecover(f *testing.F) {
	for _, s := range recordSeeds() {
		f.Add(s)
	}
	fuzzseed.Check(f, "FuzzRecover", recordSeeds())
	f.Fuzz(func(t *testing.T, rec []byte) {
		cfg := protocols.Config{Self: 1, Peers: []protocols.NodeID{1, 2, 3}, F: 1, Env: &tenv{rnd: rand.New(rand.NewPCG(1, 2))}, Recovered: [][]byte{rec}}
		_, _ = New(cfg) // must not panic
	})
}

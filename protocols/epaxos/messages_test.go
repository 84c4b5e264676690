package epaxos

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/codectest"
)

// sampleMessages has one value of every message type, with the optional
// fields filled, and some with them empty.
func sampleMessages() []protocols.Message {
	b := ballot.Ballot{Round: 7, Node: 3}
	d := Dot{Node: 2, Seq: 1 << 33}
	deps := []Dot{{Node: 1, Seq: 1}, {Node: 3, Seq: 9}}
	c := protocols.Command{ID: protocols.CommandID{Client: 1, Seq: 2}, Keys: []string{"k1", "k2"}, Payload: []byte("put")}
	return []protocols.Message{
		PreAccept{Dot: d, Cmd: c, Deps: deps},
		PreAccept{Dot: d, Cmd: protocols.Command{ID: c.ID}},
		PreAcceptOK{Dot: d, Deps: deps},
		PreAcceptOK{Dot: d},
		Accept{Ballot: b, Dot: d, Val: CmdValue(c), Deps: deps},
		Accept{Ballot: b, Dot: d, Val: NopValue},
		AcceptOK{Ballot: b, Dot: d},
		Commit{Ballot: b, Dot: d, Val: CmdValue(c), Deps: deps},
		Commit{Dot: d, Val: NopValue},
		Recover{Ballot: b, Dot: d},
		RecoverOK{Ballot: b, Dot: d, Abal: ballot.Ballot{Round: 1, Node: 1}, Phase: PreAccepted, Val: CmdValue(c), Deps: deps, InitDeps: deps[:1]},
		RecoverOK{Ballot: b, Dot: d},
		Nack{Ballot: b, Dot: d},
		Validate{Ballot: b, Dot: d, Cmd: c, Deps: deps},
		ValidateOK{Ballot: b, Dot: d, Conflicts: []Conflict{{Dot: deps[0], Committed: true}, {Dot: deps[1]}}},
		ValidateOK{Ballot: b, Dot: d},
		Waiting{Dot: d, K: 3},
		Durable{Dot: d},
		Heartbeat{Seq: 1 << 40},
		Heartbeat{Seq: 3, Executed: []uint64{0, 1 << 40, 7}},
	}
}

func TestCodecRoundTripsEveryMessage(t *testing.T) {
	codectest.RoundTrip(t, Codec{}, sampleMessages())
}

func TestCodecRejectsBadInput(t *testing.T) {
	_, err := Codec{}.Marshal(nil, "not an epaxos message")
	require.Error(t, err)
	_, err = Codec{}.Unmarshal([]byte{0xff})
	require.Error(t, err)
	// A dep count far larger than the frame must fail without allocating.
	_, err = Codec{}.Unmarshal([]byte{tagPreAcceptOK, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	require.Error(t, err)
	// A bad value kind and a bad phase.
	_, err = Codec{}.Unmarshal([]byte{tagCommit, 0, 0, 1, 1, 9})
	require.Error(t, err)
	_, err = Codec{}.Unmarshal([]byte{tagRecoverOK, 0, 0, 1, 1, 0, 0, 9, 0, 0, 0})
	require.Error(t, err)
}

// FuzzDecode checks that Unmarshal never panics and that whatever it accepts
// re-encodes to a message that decodes to the same value.
func FuzzDecode(f *testing.F) {
	codectest.FuzzDecode(f, Codec{}, sampleMessages())
}

func recordSamples() [][]byte {
	c := protocols.Command{ID: protocols.CommandID{Client: 4, Seq: 5}, Keys: []string{"x"}}
	return [][]byte{
		instanceRecord(&instance{dot: Dot{Node: 1, Seq: 1}, phase: PreAccepted, val: CmdValue(c), init: CmdValue(c),
			deps: []Dot{{Node: 2, Seq: 1}}}),
		instanceRecord(&instance{dot: Dot{Node: 2, Seq: 3}, bal: ballot.Ballot{Round: 1, Node: 2}, abal: ballot.Ballot{Round: 1, Node: 2},
			phase: Committed, val: NopValue}),
	}
}

// FuzzRecover checks that arbitrary durable records never make a restart
// panic: they are either replayed or rejected with an error.
func FuzzRecover(f *testing.F) {
	for _, s := range recordSamples() {
		f.Add(s)
	}
	fuzzseed.Check(f, "FuzzRecover", recordSamples())
	f.Fuzz(func(t *testing.T, rec []byte) {
		cfg := protocols.Config{Self: 1, Peers: []protocols.NodeID{1, 2, 3}, F: 1, Env: newNullEnv(), Recovered: [][]byte{rec}}
		_, _ = New(cfg) // must not panic or exhaust memory
	})
}

// checkpointSamples are checkpoints of a small cluster: taken before
// anything is stable (instances kept in full) and after every replica
// executed everything (instances forgotten, dots kept in the key index).
func checkpointSamples(t testing.TB) [][]byte {
	c := newCluster(t, 3, 1, 1)
	c.reps[1].Submit(cmd(1, "k"))
	c.reps[2].Submit(cmd(2, "k"))
	c.stabilize()
	c.tick(1, 300)
	c.tick(2, 300)
	c.stabilize()
	early := c.reps[3].Checkpoint()
	c.heartbeats()
	return [][]byte{early, c.reps[3].Checkpoint()}
}

// FuzzRecoverCheckpoint checks that an arbitrary checkpoint never makes a
// restart panic: it is either restored (with the records after it) or
// rejected with an error.
func FuzzRecoverCheckpoint(f *testing.F) {
	samples := checkpointSamples(f)
	for _, s := range samples {
		f.Add(s)
	}
	fuzzseed.Check(f, "FuzzRecoverCheckpoint", samples)
	f.Fuzz(func(t *testing.T, ck []byte) {
		cfg := protocols.Config{Self: 3, Peers: []protocols.NodeID{1, 2, 3}, F: 1, Env: newNullEnv(),
			Checkpoint: ck, Recovered: recordSamples()}
		_, _ = New(cfg) // must not panic or exhaust memory
	})
}

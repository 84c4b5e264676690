package skeen

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
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

// testEnv is an Env that records nothing; checkpoint tests need none.
type testEnv struct{ rng *rand.Rand }

func (testEnv) Send(protocols.NodeID, protocols.Message) {}
func (testEnv) Execute(protocols.Command)                {}
func (testEnv) Persist([]byte)                           {}
func (e testEnv) Rand() *rand.Rand                       { return e.rng }

func testConfig(ck []byte) protocols.Config {
	return protocols.Config{
		Self: 1, Peers: []protocols.NodeID{1, 2, 3, 4, 5, 6}, F: 1,
		Groups: map[protocols.GroupID][]protocols.NodeID{0: {1, 2, 3}, 2: {4, 5, 6}},
		GroupOf: func(k string) protocols.GroupID {
			if len(k) > 1 && k[1] == '2' {
				return 2
			}
			return 0
		},
		Checkpoint: ck, Env: testEnv{rand.New(rand.NewPCG(1, 2))},
	}
}

// sampleCheckpoints builds checkpoints of a process of group 0 with one
// message waiting for group 2's timestamp, three delivered messages to
// groups 0 and 2 and one delivered message to group 0 alone.
func sampleCheckpoints(t testing.TB) [][]byte {
	r, err := New(testConfig(nil))
	require.NoError(t, err)
	empty := r.Checkpoint()
	c := sampleMessages()[0].(Multicast).Cmd
	apply := func(s step) {
		r.apply(protocols.Command{ID: protocols.CommandID{Client: s.Cmd.ID.Client<<8 | uint64(s.From), Seq: s.Cmd.ID.Seq}, Payload: encodeStep(s)})
	}
	local := protocols.Command{ID: protocols.CommandID{Client: 7, Seq: 1}, Keys: []string{"g0/k2"}}
	apply(step{From: 0, Cmd: local})
	for seq := uint64(1); seq <= 4; seq++ {
		c.ID.Seq = seq
		apply(step{From: 0, Cmd: c})
		if seq != 4 {
			apply(step{From: 2, LTS: mcast.TS{Counter: seq * 10, Group: 2}, Cmd: c})
		}
	}
	require.Len(t, r.entries, 1)
	require.Len(t, r.delivered, 4)
	return [][]byte{empty, r.Checkpoint()}
}

func TestCheckpointRestoresTheState(t *testing.T) {
	cks := sampleCheckpoints(t)
	r, err := New(testConfig(cks[1]))
	require.NoError(t, err)
	require.Len(t, r.entries, 1)
	require.Len(t, r.delivered, 4)
	require.Equal(t, uint64(31), r.clock, "the last message got the clock past the final timestamp 30")
	require.Equal(t, cks[1], r.Checkpoint(), "restored state re-encodes to the same checkpoint")
	small, err := NewWithOptions(testConfig(cks[1]), Options{Retain: 1})
	require.NoError(t, err)
	require.Len(t, small.delivered, 3, "the retention window applies at restore, to single-group messages only")
	require.Len(t, small.order, 3)
	require.NotContains(t, small.delivered, protocols.CommandID{Client: 7, Seq: 1})
	for i := range cks[1] {
		_, err := New(testConfig(cks[1][:i]))
		require.Error(t, err, "truncated at %d", i)
	}
}

// FuzzCheckpoint checks that an arbitrary checkpoint never makes a restart
// panic, and that one it accepts re-encodes to itself.
func FuzzCheckpoint(f *testing.F) {
	seeds := sampleCheckpoints(f)
	for _, s := range seeds {
		f.Add(s)
	}
	fuzzseed.Check(f, "FuzzCheckpoint", seeds)
	f.Fuzz(func(t *testing.T, ck []byte) {
		r, err := NewWithOptions(testConfig(ck), Options{Retain: 8})
		if err != nil {
			return
		}
		again, err := NewWithOptions(testConfig(r.Checkpoint()), Options{Retain: 8})
		require.NoError(t, err)
		require.Equal(t, r.Checkpoint(), again.Checkpoint())
	})
}

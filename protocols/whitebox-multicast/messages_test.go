package wbcast

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/codectest"
	"github.com/blossom-dso/blossom/protocols/mcast"
)

// sampleMessages has one value of every message type, optional fields
// filled where they have any.
func sampleMessages() []protocols.Message {
	b := ballot.Ballot{Round: 7, Node: 3}
	c := protocols.Command{ID: protocols.CommandID{Client: 1, Seq: 2}, Keys: []string{"g0/k1", "g2/k1"}, Payload: []byte("put")}
	ts := mcast.TS{Counter: 41, Group: 2}
	rec := Record{Cmd: c, LTS: []mcast.TS{{Counter: 40}, ts}, Bals: []ballot.Ballot{b, {Round: 1, Node: 7}}, GTS: ts}
	del := []Delivered{{Cmd: c, GTS: ts, LTS: mcast.TS{Counter: 40}}}
	return []protocols.Message{
		Multicast{Cmd: c},
		Accept{Group: 2, Ballot: b, LTS: ts, Cmd: c},
		AcceptAck{ID: c.ID, Group: 0, Bals: rec.Bals, GTS: ts},
		Deliver{Ballot: b, Pos: 9, GTS: ts, LTS: mcast.TS{Counter: 3}, Cmd: c},
		Heartbeat{Ballot: b, Delivered: 12},
		CatchUpReq{From: 13},
		NewLeader{Ballot: b, From: 4},
		NewLeaderAck{Ballot: b, ABallot: ballot.Ballot{Round: 2, Node: 1}, Clock: 99, Count: 4, Delivered: del, Records: []Record{rec}},
		NewLeaderAck{Ballot: b},
		NewLeaderSync{Ballot: b, Clock: 100, From: 3, Delivered: del, Records: []Record{rec}},
		NewLeaderSyncAck{Ballot: b},
		SyncReq{Ballot: b, From: 5},
		Progress{Count: 17, GTS: ts, ID: c.ID},
	}
}

func TestCodecRoundTripsEveryMessage(t *testing.T) {
	codectest.RoundTrip(t, Codec{}, sampleMessages())
}

func TestCodecRejectsUnknownTypes(t *testing.T) {
	_, err := Codec{}.Marshal(nil, "not a wbcast message")
	require.Error(t, err)
	_, err = Codec{}.Unmarshal([]byte{0xff})
	require.Error(t, err)
	_, err = Codec{}.Unmarshal(nil)
	require.Error(t, err)
	// A count far larger than the frame must fail without allocating it.
	_, err = Codec{}.Unmarshal([]byte{tagNewLeaderSync, 1, 1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	require.Error(t, err)
}

// FuzzDecode checks that Unmarshal never panics and that whatever it accepts
// re-encodes to a message that decodes to the same value.
func FuzzDecode(f *testing.F) {
	codectest.FuzzDecode(f, Codec{}, sampleMessages())
}

// nopEnv is an Env that does nothing, for recovery tests.
type nopEnv struct{}

func (nopEnv) Send(protocols.NodeID, protocols.Message) {}
func (nopEnv) Execute(protocols.Command)                {}
func (nopEnv) Persist([]byte)                           {}
func (nopEnv) Rand() *rand.Rand                         { return nil }

func testConfig(recovered [][]byte) protocols.Config {
	return protocols.Config{
		Self: 1, Peers: []protocols.NodeID{1, 2, 3, 4, 5, 6}, F: 1, Env: nopEnv{},
		Groups: map[protocols.GroupID][]protocols.NodeID{0: {1, 2, 3}, 2: {4, 5, 6}},
		GroupOf: func(k string) protocols.GroupID {
			if len(k) < 2 {
				return 0
			}
			return protocols.GroupID(k[1] - '0')
		},
		Recovered: recovered,
	}
}

func recordSamples() [][]byte {
	s := sampleMessages()
	rec := s[7].(NewLeaderAck).Records[0]
	// Ballots owned by members of the destination groups of testConfig.
	bals := []ballot.Ballot{rec.Bals[0], {Round: 1, Node: 4}}
	m := &msg{cmd: rec.Cmd, dest: []protocols.GroupID{0, 2}, have: []bool{true, true}, lts: rec.LTS, bals: bals, gts: rec.GTS}
	return [][]byte{
		ballotRecord(ballot.Ballot{Round: 2, Node: 1}),
		syncRecord(ballot.Ballot{Round: 2, Node: 1}, 17),
		acceptRecord(m),
		deliverRecord(1, s[7].(NewLeaderAck).Delivered[0]),
	}
}

func TestRecoverReplaysRecords(t *testing.T) {
	r, err := New(testConfig(recordSamples()))
	require.NoError(t, err)
	require.Len(t, r.delivered, 1)
	require.Equal(t, ballot.Ballot{Round: 2, Node: 1}, r.aballot)
	require.True(t, r.mustCampaign, "a restarted owner of the current ballot must start a new one")
}

// FuzzRecover checks that arbitrary durable records never make a restart
// panic: they are either replayed or rejected with an error.
func FuzzRecover(f *testing.F) {
	seeds := recordSamples()
	for _, s := range seeds {
		f.Add(s)
	}
	fuzzseed.Check(f, "FuzzRecover", seeds)
	f.Fuzz(func(t *testing.T, rec []byte) {
		_, _ = New(testConfig([][]byte{rec}))
	})
}

package mencius

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/codectest"
)

// sampleMessages has one value of every message type, with the optional
// fields filled.
func sampleMessages() []protocols.Message {
	b := ballot.Ballot{Round: 7, Node: 3}
	cmds := []protocols.Command{
		{ID: protocols.CommandID{Client: 1, Seq: 2}, Keys: []string{"k1"}, Payload: []byte("put")},
		{ID: protocols.CommandID{Client: 9, Seq: 1 << 40}, Keys: []string{"a", "b"}, Acked: 3},
	}
	acc := []Accepted{{Slot: 4, Ballot: b, Cmds: cmds}, {Slot: 9, Ballot: ballot.Ballot{Round: 1, Node: 1}}}
	return []protocols.Message{
		Accept{Ballot: ballot.Ballot{Round: 1, Node: 2}, Slot: 2, Cmds: cmds},
		Accept{Ballot: b, Slot: 100},
		AcceptOK{Ballot: b, Slot: 99, SkipFrom: 3, SkipTo: 18},
		AcceptOK{Ballot: b, Slot: 1},
		Skip{From: 6, To: 21},
		Skip{},
		Prepare{Ballot: b, Owner: 2, From: 7, To: 47},
		Promise{Ballot: b, Owner: 2, From: 4, To: 9, Accepted: acc},
		Promise{Ballot: b, Owner: 1, From: 1, To: 1},
		Nack{Slot: 12, Promised: b},
		CatchUpReq{From: 17, To: 40},
		CatchUp{Chosen: acc},
		Snapshot{Checkpoint: []byte{recCheckpoint, 0, 0, 2, 0}, State: []byte("state")},
	}
}

func TestCodecRoundTripsEveryMessage(t *testing.T) {
	codectest.RoundTrip(t, Codec{}, sampleMessages())
}

func TestCodecRejectsUnknownTypes(t *testing.T) {
	_, err := Codec{}.Marshal(nil, "not a mencius message")
	require.Error(t, err)
	_, err = Codec{}.Unmarshal([]byte{0xff})
	require.Error(t, err)
	_, err = Codec{}.Unmarshal(nil)
	require.Error(t, err)
	// A count far larger than the frame must fail without allocating it.
	_, err = Codec{}.Unmarshal([]byte{tagCatchUp, 0xff, 0xff, 0xff, 0xff, 0x0f})
	require.Error(t, err)
}

// FuzzDecode checks that Unmarshal never panics and that whatever it accepts
// re-encodes to a message that decodes to the same value.
func FuzzDecode(f *testing.F) {
	codectest.FuzzDecode(f, Codec{}, sampleMessages())
}

// newTestReplica is a replica of a 3-node cluster, node 2, as New leaves
// it before recovery.
func newTestReplica() *Replica {
	cfg := protocols.Config{Self: 2, Peers: []protocols.NodeID{1, 2, 3}, Env: nopEnv{}}
	return newReplica(cfg)
}

// nopEnv is an Env that drops everything.
type nopEnv struct{}

func (nopEnv) Send(protocols.NodeID, protocols.Message) {}
func (nopEnv) Execute(protocols.Command)                {}
func (nopEnv) Persist([]byte)                           {}
func (nopEnv) Rand() *rand.Rand                         { return rand.New(rand.NewPCG(1, 2)) }

func TestRecoverRestoresVotesPromisesAndSkips(t *testing.T) {
	cmds := sampleMessages()[0].(Accept).Cmds
	revoker := ballot.Ballot{Round: 4, Node: 3}
	recs := [][]byte{
		acceptRecord(2, ownBallot(2), cmds), // own proposal in slot 2
		skipRecord(5, 11),                   // own slots 5 and 8 skipped
		promiseRecord(1, 1, 10, revoker),    // slots 1, 4, 7, 10 of node 1
		acceptRecord(4, revoker, nil),
	}
	r := newTestReplica()
	require.NoError(t, r.recover(recs))
	require.Equal(t, uint64(11), r.nextOwn, "own slots up to 8 are used or skipped")
	require.Equal(t, cmds, r.inflight[2], "the own proposal is retransmitted")
	require.Equal(t, ownBallot(2), r.at(2).bal)
	require.False(t, r.at(2).chosen)
	for _, s := range []uint64{5, 8} {
		require.True(t, r.at(s).chosen, "skipped slot %d", s)
		require.Empty(t, r.at(s).cmds)
	}
	for _, s := range []uint64{1, 7, 10} {
		require.Equal(t, revoker, r.at(s).prom, "slot %d", s)
	}
	require.Equal(t, revoker, r.at(4).bal)
	require.Error(t, newTestReplica().recover([][]byte{acceptRecord(3, ownBallot(2), nil)}), "round 1 of slot 3 belongs to node 3")
	require.Error(t, newTestReplica().recover([][]byte{{}}))
	require.Error(t, newTestReplica().recover([][]byte{{0x7f}}))
}

// FuzzRecover checks that arbitrary durable records never make a restart
// panic: they are either replayed or rejected with an error.
func FuzzRecover(f *testing.F) {
	b := ballot.Ballot{Round: 2, Node: 1}
	seeds := [][]byte{
		acceptRecord(3, b, sampleMessages()[0].(Accept).Cmds),
		promiseRecord(1, 1, 40, b),
		skipRecord(2, 14),
		markRecord(maxAhead),
		acceptRecord(1<<40, b, nil), // far beyond the horizon: an error, not 2^40 entries
	}
	for _, s := range seeds {
		f.Add(s)
	}
	fuzzseed.Check(f, "FuzzRecover", seeds)
	f.Fuzz(func(t *testing.T, rec []byte) {
		_ = newTestReplica().recover([][]byte{rec}) // must not panic or exhaust memory
	})
}

// recordingEnv is a nopEnv that keeps the persisted records.
type recordingEnv struct {
	nopEnv
	recs *[][]byte
}

func (e recordingEnv) Persist(rec []byte) { *e.recs = append(*e.recs, rec) }

// TestRecoverAfterExecutingFarWithoutRecords checks the horizon: a replica
// that executes far more than maxAhead slots learned from its peers (no
// record of its own) and then votes at the edge of its window restarts
// from its records, and a record far beyond the horizon of the records
// before it is an error (recovery cannot tell where the executed prefix
// was, and must not rebuild a log up to any slot a record names).
func TestRecoverAfterExecutingFarWithoutRecords(t *testing.T) {
	var recs [][]byte
	cfg := protocols.Config{Self: 2, Peers: []protocols.NodeID{1, 2, 3}, Env: recordingEnv{recs: &recs}}
	r := newReplica(cfg)
	r.retain = 0
	for r.executed < maxAhead+1000 {
		for s := r.executed + 1; s <= r.executed+1000; s++ {
			r.choose(s, nil)
		}
		r.execute()
		r.compact()
	}
	revoker := ballot.Ballot{Round: 2, Node: 3}
	far := r.executed + maxAhead
	r.Step(3, Accept{Ballot: revoker, Slot: far})
	require.Equal(t, revoker, r.at(far).bal, "the vote is cast")
	re := newReplica(cfg)
	require.NoError(t, re.recover(recs), "the replica restarts from its records")
	require.Equal(t, revoker, re.at(far).bal, "the vote survives the restart")
	require.Len(t, recs, 3, "two marks (one per maxAhead/2 slots executed) and the vote")
	require.Error(t, newTestReplica().recover([][]byte{acceptRecord(1<<40, revoker, nil)}))
	require.Error(t, newTestReplica().recover([][]byte{markRecord(maxAhead), markRecord(3 * maxAhead)}))
}

// sampleCheckpoint is the checkpoint of a replica (node 2 of 3) that
// executed slots 1..3, keeps them (retention window 8), voted in slot 5
// (its own) and promised a revoker node 1's slot 4.
func sampleCheckpoint(t testing.TB) []byte {
	r := newTestReplica()
	r.retain = 8
	cmds := sampleMessages()[0].(Accept).Cmds
	revoker := ballot.Ballot{Round: 3, Node: 3}
	require.NoError(t, r.recover([][]byte{
		acceptRecord(2, ownBallot(2), cmds),
		promiseRecord(1, 4, 4, revoker),
		acceptRecord(5, ownBallot(2), nil),
	}))
	r.choose(1, nil)
	r.choose(2, cmds)
	r.choose(3, nil)
	r.execute()
	require.Equal(t, uint64(3), r.executed)
	return r.Checkpoint()
}

func TestCheckpointRestoresVotesPromisesAndExecutedPrefix(t *testing.T) {
	ck := sampleCheckpoint(t)
	r := newTestReplica()
	r.retain = 8
	require.NoError(t, r.restore(ck))
	require.Equal(t, uint64(3), r.executed, "the executed prefix is restored")
	require.True(t, r.at(2).chosen, "retained executed slots stay chosen, to serve catch-up")
	require.Equal(t, ballot.Ballot{Round: 3, Node: 3}, r.at(4).prom, "a promise is kept")
	require.Equal(t, ownBallot(2), r.at(5).bal, "a vote is kept")
	require.Contains(t, r.inflight, uint64(5), "the own proposal not chosen is retransmitted")
	require.Equal(t, uint64(8), r.nextOwn, "the next own slot lies past the own proposal")
	require.Equal(t, ck, r.Checkpoint(), "a restored checkpoint encodes the same")

	// Compaction with a window of 1 forgets slots 1 and 2, and their ids.
	r.retain = 1
	r.Checkpoint()
	require.Equal(t, uint64(2), r.base)
	require.Nil(t, r.at(2))
	require.Empty(t, r.done, "the ids of forgotten slots are forgotten")
}

func TestMalformedCheckpointsAreErrors(t *testing.T) {
	ck := sampleCheckpoint(t)
	for i := range ck {
		require.NotPanics(t, func() { _ = newTestReplica().restore(ck[:i]) })
		require.Error(t, newTestReplica().restore(ck[:i]), "checkpoint cut at %d bytes", i)
	}
	require.Error(t, newTestReplica().restore(append([]byte{recCheckpoint}, 9, 3)), "base above executed")
}

// FuzzCheckpoint checks that arbitrary checkpoint records never make a
// restart panic: they are either restored or rejected with an error.
func FuzzCheckpoint(f *testing.F) {
	seeds := [][]byte{sampleCheckpoint(f), {recCheckpoint, 0, 0, 2, 0}}
	for _, s := range seeds {
		f.Add(s)
	}
	fuzzseed.Check(f, "FuzzCheckpoint", seeds)
	f.Fuzz(func(t *testing.T, ck []byte) {
		_ = newTestReplica().restore(ck) // must not panic or exhaust memory
	})
}

// TestImplausibleMessagesChangeNothing checks the drops of "Hostile input"
// (package doc) on single messages: a ballot far beyond any round this
// replica promised or voted, a Prepare owned by no peer, and a skip range
// near the top of the slot numbers (whose own-slot rounding would wrap
// around to low slots) leave the log untouched.
func TestImplausibleMessagesChangeNothing(t *testing.T) {
	far := ballot.Ballot{Round: 1 << 40, Node: 3}
	for name, m := range map[string]protocols.Message{
		"Accept far ahead":    Accept{Ballot: far, Slot: 7},
		"AcceptOK far ahead":  AcceptOK{Ballot: far, Slot: 7},
		"Prepare far ahead":   Prepare{Ballot: far, Owner: 2, From: 2, To: 8},
		"Prepare of no peer":  Prepare{Ballot: ballot.Ballot{Round: 2, Node: 9}, Owner: 2, From: 2, To: 8},
		"Skip at the top":     Skip{From: 1<<64 - 3, To: 1<<64 - 1},
		"CatchUp far ahead":   CatchUp{Chosen: []Accepted{{Slot: 7, Ballot: far}}},
		"skip on an AcceptOK": AcceptOK{Ballot: far, Slot: 1<<64 - 2, SkipFrom: 1<<64 - 3, SkipTo: 1<<64 - 1},
	} {
		r := newTestReplica()
		r.Step(3, m)
		require.Zero(t, r.lastSlot(), "%s: the log grew", name)
		require.True(t, r.top.IsZero(), "%s: the ballot was adopted", name)
	}
	// In a 5-replica cluster, node 3's own slot at or above 2^64−2 lies
	// past 2^64: rounded without the range check it wrapped around to
	// slot 2, node 2's, which the skip then decided as a no-op.
	r5 := newReplica(protocols.Config{Self: 1, Peers: []protocols.NodeID{1, 2, 3, 4, 5}, Env: nopEnv{}})
	r5.Step(3, Skip{From: 1<<64 - 2, To: 1<<64 - 1})
	require.Zero(t, r5.lastSlot(), "a skip at the top of the slot numbers grew the log")
	// A plausible revoker's ballot is taken.
	r := newTestReplica()
	r.Step(3, Accept{Ballot: ballot.Ballot{Round: 2, Node: 3}, Slot: 7})
	require.Equal(t, ballot.Ballot{Round: 2, Node: 3}, r.at(7).bal)
}

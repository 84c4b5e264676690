package paxos

import (
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
		Snapshot{Checkpoint: []byte{recCheckpoint, 4, 1, 5, 7, 0}, State: []byte("state machine")},
		Snapshot{},
	}
}

func TestCodecRoundTripsEveryMessage(t *testing.T) {
	codectest.RoundTrip(t, Codec{}, sampleMessages())
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
	codectest.FuzzDecode(f, Codec{}, sampleMessages())
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
		_ = r.recover(nil, [][]byte{rec}) // must not panic or exhaust memory
	})
}

// sampleCheckpoints are checkpoint records: an empty replica's, and one
// with a promise, retained executed slots and votes above them.
func sampleCheckpoints() [][]byte {
	b := ballot.Ballot{Round: 3, Node: 2}
	cmds := sampleMessages()[4].(Accept).Cmds
	r := &Replica{retain: 2}
	empty := r.appendCheckpoint(nil)
	r.promised = ballot.Ballot{Round: 4, Node: 1}
	r.base, r.executed = 5, 7
	r.log = logOf(entry{bal: b, cmds: cmds, chosen: true}, entry{chosen: true}, entry{bal: b}, entry{}, entry{bal: b, cmds: cmds[:1]})
	return [][]byte{empty, r.appendCheckpoint(nil)}
}

// FuzzCheckpoint checks that an arbitrary checkpoint record never makes a
// restart panic, and that a checkpoint it accepts re-encodes to one that
// restores the same state.
func FuzzCheckpoint(f *testing.F) {
	seeds := sampleCheckpoints()
	for _, s := range seeds {
		f.Add(s)
	}
	fuzzseed.Check(f, "FuzzCheckpoint", seeds)
	f.Fuzz(func(t *testing.T, ck []byte) {
		r := &Replica{retain: 4}
		if r.recover(ck, nil) != nil {
			return
		}
		again := &Replica{retain: 4}
		require.NoError(t, again.recover(r.appendCheckpoint(nil), nil))
		requireSameAcceptor(t, r, again, "re-encoded checkpoint")
	})
}

func TestMalformedCheckpointsAreErrors(t *testing.T) {
	good := sampleCheckpoints()[1]
	r := &Replica{retain: 8}
	require.NoError(t, r.recover(good, nil))
	require.Equal(t, uint64(5), r.base)
	require.Equal(t, uint64(7), r.executed)
	require.Equal(t, ballot.Ballot{Round: 4, Node: 1}, r.promised)
	require.Equal(t, 2, r.done.Len(), "the retained executed slots' ids")
	for i := range good {
		r := &Replica{retain: 8}
		require.Error(t, r.recover(good[:i], nil), "truncated at %d", i)
	}
	bad := map[string]*Replica{
		"base above executed":  {base: 3, executed: 2},
		"executed gap":         {base: 0, executed: 2, log: logOf(entry{chosen: true})},
		"executed not chosen":  {base: 0, executed: 1, log: logOf(entry{bal: ballot.Ballot{Round: 1, Node: 1}})},
		"slot beyond the pipe": {executed: 0, log: logOf(make([]entry, maxAhead+2)...)},
	}
	bad["slot beyond the pipe"].log.at(maxAhead + 1).bal = ballot.Ballot{Round: 1, Node: 1}
	for name, b := range bad {
		r := &Replica{retain: 8}
		require.Error(t, r.recover(b.appendCheckpoint(nil), nil), name)
	}
	require.Error(t, (&Replica{}).recover(promiseRecord(ballot.Ballot{Round: 1}), nil), "a record is not a checkpoint")
}

// TestAcceptRecordSize checks that an accept record's Size is the length
// of its encoding (a driver that discards records counts Size for its
// checkpoint policy) and that AppendTo appends the record recover reads.
func TestAcceptRecordSize(t *testing.T) {
	cmds := sampleMessages()[4].(Accept).Cmds
	for _, a := range []acceptRec{
		{slot: 1, b: ballot.Ballot{Round: 1, Node: 1}},
		{slot: 3, b: ballot.Ballot{Round: 2, Node: 1}, cmds: cmds},
		{slot: 1 << 15, b: ballot.Ballot{Round: 1 << 50, Node: 1 << 20}, cmds: cmds[:1]},
		{slot: 1 << 40, b: ballot.Ballot{Round: 7, Node: 3}, cmds: cmds},
	} {
		enc := a.AppendTo([]byte("prefix"))
		require.Equal(t, a.Size(), len(enc)-len("prefix"), "slot %d", a.slot)
		require.Equal(t, acceptRecord(a.slot, a.b, a.cmds), enc[len("prefix"):])
		if a.slot > maxAhead {
			continue // recover refuses a slot so far ahead
		}
		r := &Replica{}
		require.NoError(t, r.recover(nil, [][]byte{enc[len("prefix"):]}))
		require.Equal(t, a.b, r.promised)
		require.Equal(t, len(a.cmds), len(r.at(a.slot).cmds))
	}
}

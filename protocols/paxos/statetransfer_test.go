package paxos

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// stEnv gives a scripted node the runtime's protocols.StateTransfer: its
// state is the list of command ids it executed (the harness's state
// machine), its checkpoints are taken by the harness, and an installed
// state is followed by a checkpoint after the input, as the replica core
// does.
type stEnv struct{ *tNode }

func (e stEnv) LastCheckpoint() ([]byte, []byte, bool) {
	if e.ck == nil {
		return nil, nil, false
	}
	return e.ck, e.ckState, true
}

func (e stEnv) InstallState(state []byte) error {
	ids, err := decodeIDs(state)
	if err != nil {
		return err
	}
	e.execs = ids
	e.installs++
	e.installed = true
	return nil
}

func encodeIDs(ids []protocols.CommandID) []byte {
	b := wire.AppendUvarint([]byte{'S'}, uint64(len(ids)))
	for _, id := range ids {
		b = wire.AppendCommandID(b, id)
	}
	return b
}

func decodeIDs(b []byte) ([]protocols.CommandID, error) {
	if len(b) == 0 || b[0] != 'S' {
		return nil, errors.New("not a state")
	}
	rd := wire.NewReader(b[1:])
	ids := make([]protocols.CommandID, rd.Count(2))
	for i := range ids {
		ids[i] = rd.CommandID()
	}
	return ids, rd.Done()
}

// checkpointNode takes a checkpoint of nd with its state, as the runtime
// does every few records and after an install.
func checkpointNode(nd *tNode) {
	nd.ck = nd.r.Checkpoint()
	nd.ckState = encodeIDs(nd.execs)
	nd.installed = false
}

// newTransferNet is a scripted cluster whose nodes can transfer state.
func newTransferNet(t *testing.T, seed uint64, n int, opts Options) *tNet {
	nt := newTNet(t, seed, n, opts)
	nt.transfer = true
	for _, id := range nt.peers {
		nd := nt.nodes[id]
		nd.r = nt.start(nd, nil, nil)
	}
	return nt
}

// TestStateTransferCatchesUpBeyondTheWindow keeps one replica down (or,
// in the second half, the leader too when it comes back) while the others
// choose far more slots than they retain and checkpoint every few inputs.
// The replica must catch up by state transfer: it installs a peer's state
// at least once, then executes every later slot, and ends with the state
// of the replicas that never lagged. Its promise is its own (never taken
// from the snapshot), and a replica that lagged and then loses the leader
// still gets a leader elected with the remaining replica.
func TestStateTransferCatchesUpBeyondTheWindow(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		for _, leaderDies := range []bool{false, true} {
			name := fmt.Sprintf("seed=%d/leaderDies=%v", seed, leaderDies)
			nt := newTransferNet(t, seed, 3, Options{Retain: 3})
			// Settle on a leader first, with node 3 up.
			for range 30 {
				nt.step(false)
			}
			nt.quiesce(400)
			lagger := protocols.NodeID(3)
			if nt.nodes[3].r.role == leader {
				lagger = 2
			}
			lag := nt.nodes[lagger]
			lag.down = true
			promisedBefore := lag.r.promised
			for i := range 400 {
				nt.step(true)
				if i%5 == 0 {
					for _, id := range nt.peers {
						if nd := nt.nodes[id]; !nd.down {
							checkpointNode(nd)
						}
					}
				}
			}
			nt.quiesce(400)
			var ahead *tNode
			for _, id := range nt.peers {
				if nd := nt.nodes[id]; !nd.down {
					checkpointNode(nd)
					ahead = nd
				}
			}
			require.Greater(t, ahead.r.base, lag.r.executed+1, "%s: the lagging replica is not behind the window", name)
			lag.down = false
			if leaderDies {
				for _, id := range nt.peers {
					if nd := nt.nodes[id]; nd != lag && nd.r.role == leader {
						nd.down = true
					}
				}
			}
			nt.quiesce(2000)
			require.Positive(t, lag.installs, "%s: no state was installed", name)
			require.False(t, lag.r.promised.Less(promisedBefore), "%s: promise went down", name)
			for _, id := range nt.peers {
				if nd := nt.nodes[id]; !nd.down && nd != lag {
					require.Equal(t, nd.r.executed, lag.r.executed, "%s: executed prefix", name)
					require.Equal(t, firstOccurrences(nd.execs), firstOccurrences(lag.execs), "%s: state differs from node %d", name, id)
				}
			}
			// The install is made durable by a checkpoint: a restart from it
			// stands at the installed point.
			checkpointNode(lag)
			back := nt.start(&tNode{id: lag.id, net: nt}, slices.Clone(lag.ck), nil)
			requireSameAcceptor(t, lag.r, back, name+": restart after install")
		}
	}
}

// TestSnapshotAdoptsOnlyTheExecutedPrefix installs a peer's snapshot whose
// checkpoint holds a higher promise and votes above its executed prefix:
// the receiver takes the executed prefix only, keeps its own promise and
// its own votes above it, forgets the slots at or below it, and asks the
// sender for the next slot.
func TestSnapshotAdoptsOnlyTheExecutedPrefix(t *testing.T) {
	nt := newTransferNet(t, 1, 3, Options{Retain: 2})
	nd := nt.nodes[3]
	own := ballot.Ballot{Round: 2, Node: 1}
	nd.r.Step(1, Accept{Ballot: own, Slot: 3, Cmds: []protocols.Command{{ID: protocols.CommandID{Client: 1, Seq: 3}}}})
	nd.r.Step(1, Accept{Ballot: own, Slot: 9, Cmds: []protocols.Command{{ID: protocols.CommandID{Client: 1, Seq: 9}}}})
	nt.q = nil
	peer := &Replica{retain: 2, promised: ballot.Ballot{Round: 50, Node: 2}, base: 5, executed: 7}
	chosen := func(seq uint64) entry {
		return entry{bal: ballot.Ballot{Round: 1, Node: 2}, chosen: true, cmds: []protocols.Command{{ID: protocols.CommandID{Client: 2, Seq: seq}}}}
	}
	peer.log = logOf(chosen(6), chosen(7), entry{bal: ballot.Ballot{Round: 50, Node: 2}, cmds: chosen(8).cmds})
	state := encodeIDs([]protocols.CommandID{{Client: 2, Seq: 1}, {Client: 2, Seq: 7}})
	nd.r.Step(2, Snapshot{Checkpoint: peer.appendCheckpoint(nil), State: state})
	r := nd.r
	require.Equal(t, 1, nd.installs)
	require.Equal(t, uint64(7), r.executed)
	require.Equal(t, uint64(7), r.base)
	require.Equal(t, own, r.promised, "the sender's promise is not the receiver's")
	require.True(t, r.at(8).bal.IsZero(), "the sender's vote at 8 is not the receiver's")
	require.False(t, r.at(8).chosen)
	require.Equal(t, own, r.at(9).bal, "the receiver's own vote above E stays")
	require.Empty(t, r.done)
	require.Equal(t, []tMsg{{from: 3, to: 2, m: CatchUpReq{From: 8}}}, nt.q)
	// A stale snapshot (E not above executed) changes nothing.
	nt.q = nil
	nd.r.Step(2, Snapshot{Checkpoint: peer.appendCheckpoint(nil), State: state})
	require.Equal(t, 1, nd.installs)
	require.Empty(t, nt.q)
}

// TestMalformedSnapshotsAreIgnored feeds truncated and corrupted
// checkpoints and states: none is installed and nothing changes.
func TestMalformedSnapshotsAreIgnored(t *testing.T) {
	nt := newTransferNet(t, 1, 3, Options{})
	nd := nt.nodes[2]
	good := sampleCheckpoints()[1]
	state := encodeIDs(nil)
	for i := range good {
		nd.r.Step(1, Snapshot{Checkpoint: good[:i], State: state})
	}
	bad := &Replica{base: 0, executed: 2, log: logOf(entry{chosen: true})}
	nd.r.Step(1, Snapshot{Checkpoint: bad.appendCheckpoint(nil), State: state})
	nd.r.Step(1, Snapshot{Checkpoint: good, State: []byte("not a state")})
	require.Zero(t, nd.installs)
	require.Zero(t, nd.r.executed)
	require.Empty(t, nt.q)
	nd.r.Step(1, Snapshot{Checkpoint: good, State: state})
	require.Equal(t, 1, nd.installs, "the well-formed snapshot is installed")
}

// TestSnapshotIsRateLimited sends CatchUpReqs below the base again and
// again: one Snapshot per peer per SuspectTicks ticks.
func TestSnapshotIsRateLimited(t *testing.T) {
	nt := newTransferNet(t, 1, 3, Options{Retain: 1})
	nd := nt.nodes[1]
	for s := uint64(1); s <= 5; s++ {
		nd.r.Step(2, Accept{Ballot: ballot.Ballot{Round: 1, Node: 2}, Slot: s, Commit: 5})
	}
	nd.r.Step(2, Commit{Ballot: ballot.Ballot{Round: 1, Node: 2}, Commit: 5})
	require.Equal(t, uint64(5), nd.r.executed)
	checkpointNode(nd)
	require.Equal(t, uint64(4), nd.r.base)
	count := func() int {
		n := 0
		for _, m := range nt.q {
			if _, ok := m.m.(Snapshot); ok && m.to == 3 {
				n++
			}
		}
		return n
	}
	nt.q = nil
	for tick := range 25 {
		nd.r.Step(3, CatchUpReq{From: 2})
		nd.r.Step(3, Prepare{Ballot: ballot.Ballot{Round: 9, Node: 3}, From: 1})
		nd.r.Tick()
		require.Equal(t, 1+tick/10, count(), "tick %d", tick)
	}
	// A request above the base is served from the log, without a snapshot.
	nt.q = nil
	nd.r.Step(3, CatchUpReq{From: 5})
	require.Zero(t, count())
}

// FuzzSnapshot checks that an arbitrary Snapshot never makes a replica
// panic, and that one it installs leaves it at the record's executed
// prefix with its own promise.
func FuzzSnapshot(f *testing.F) {
	seeds := sampleCheckpoints()
	for _, s := range seeds {
		f.Add(s)
	}
	fuzzseed.Check(f, "FuzzSnapshot", seeds)
	f.Fuzz(func(t *testing.T, ck []byte) {
		nt := newTransferNet(t, 1, 3, Options{Retain: 4})
		nd := nt.nodes[2]
		promised := nd.r.promised
		nd.r.Step(1, Snapshot{Checkpoint: ck, State: encodeIDs(nil)})
		if nd.installs == 0 {
			require.Zero(t, nd.r.executed)
			return
		}
		e, ok := checkpointExecuted(ck)
		require.True(t, ok)
		require.Equal(t, e, nd.r.executed)
		require.Equal(t, e, nd.r.base)
		require.Equal(t, promised, nd.r.promised)
	})
}

// TestRefusedPrepareGetsASnapshot: a replica refuses a Prepare starting at
// or below its base (no promise, nothing persisted) and sends the
// candidate its snapshot instead; once installed, the candidate's next
// Prepare starts above that base and is answered.
func TestRefusedPrepareGetsASnapshot(t *testing.T) {
	nt := newTransferNet(t, 1, 3, Options{Retain: 1})
	nd, cand := nt.nodes[1], nt.nodes[3]
	b := ballot.Ballot{Round: 1, Node: 2}
	for s := uint64(1); s <= 5; s++ {
		nd.r.Step(2, Accept{Ballot: b, Slot: s, Commit: 5})
	}
	nd.r.Step(2, Commit{Ballot: b, Commit: 5})
	checkpointNode(nd)
	require.Equal(t, uint64(4), nd.r.base)
	nt.q, nd.recs = nil, nil
	cand.r.promised = b
	cand.r.campaign()
	var prep Prepare
	for _, m := range nt.q {
		if p, ok := m.m.(Prepare); ok && m.to == 1 {
			prep = p
		}
	}
	require.Equal(t, uint64(1), prep.From)
	nt.q = nil
	nd.r.Step(3, prep)
	require.Empty(t, nd.recs, "promised while compacted")
	require.Len(t, nt.q, 1)
	snap, ok := nt.q[0].m.(Snapshot)
	require.True(t, ok, "sent %T", nt.q[0].m)
	nt.q = nil
	cand.r.Step(1, snap)
	require.Equal(t, 1, cand.installs)
	require.Equal(t, uint64(5), cand.r.executed)
	cand.r.campaign()
	for _, m := range nt.q {
		if p, ok := m.m.(Prepare); ok && m.to == 1 {
			prep = p
		}
	}
	require.Equal(t, uint64(6), prep.From)
	nt.q = nil
	nd.r.Step(3, prep)
	require.Len(t, nt.q, 1)
	require.IsType(t, Promise{}, nt.q[0].m)
}

package transport

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/paxos"
)

// inmemNodes joins nodes 1..n to nw.
func inmemNodes(t *testing.T, nw *Network, n int) ([]Transport, []*recorder) {
	var ts []Transport
	var recs []*recorder
	for i := 1; i <= n; i++ {
		r := &recorder{}
		ts = append(ts, nw.Join(protocols.NodeID(i), r.handle))
		recs = append(recs, r)
	}
	t.Cleanup(func() { require.NoError(t, nw.Close()) })
	return ts, recs
}

// reaches sends a fresh message from a to b and reports whether it arrives.
// A cut link drops the message inside Send, so a drop is seen at once.
func reaches(ctx context.Context, t *testing.T, ts []Transport, recs []*recorder, a, b protocols.NodeID, seq int) bool {
	t.Helper()
	m := tag(a, seq)
	before := ts[a-1].(*InmemTransport).Stats().Dropped
	ts[a-1].Send(b, m)
	if ts[a-1].(*InmemTransport).Stats().Dropped > before {
		return false
	}
	eventually(ctx, t, func() bool { return recs[b-1].has(a, m) }, "%d -> %d", a, b)
	return true
}

func TestNetworkPartitionHeal(t *testing.T) {
	noLeaks(t)
	ctx := testCtx(t)
	nw := NewNetwork()
	ts, recs := inmemNodes(t, nw, 3)
	seq := 0
	check := func(want map[[2]protocols.NodeID]bool) {
		t.Helper()
		for a := protocols.NodeID(1); a <= 3; a++ {
			for b := protocols.NodeID(1); b <= 3; b++ {
				seq++
				w, ok := want[[2]protocols.NodeID{a, b}]
				if !ok {
					w = want[[2]protocols.NodeID{b, a}]
				}
				if a == b {
					w = true
				}
				require.Equal(t, w, reaches(ctx, t, ts, recs, a, b, seq), "%d -> %d", a, b)
			}
		}
	}
	all := map[[2]protocols.NodeID]bool{{1, 2}: true, {1, 3}: true, {2, 3}: true}
	check(all)

	nw.Partition(1, 2)
	check(map[[2]protocols.NodeID]bool{{1, 3}: true, {2, 3}: true})
	nw.Heal(2, 1)
	check(all)

	nw.Isolate(3)
	check(map[[2]protocols.NodeID]bool{{1, 2}: true})
	nw.Heal(3, 1)
	check(map[[2]protocols.NodeID]bool{{1, 2}: true, {1, 3}: true})
	nw.Partition(1, 2)
	nw.HealAll()
	check(all)

	// Drops across a partition are counted by the sender.
	nw.Partition(1, 2)
	d := nw.Stats(1).Dropped
	ts[0].Send(2, tag(1, 0))
	require.Equal(t, d+1, nw.Stats(1).Dropped)
}

func TestNetworkCodecRoundTripAndDrops(t *testing.T) {
	noLeaks(t)
	ctx := testCtx(t)
	nw := NewNetworkWithOptions(NetworkOptions{Codec: paxosCodec(t)})
	ts, recs := inmemNodes(t, nw, 2)
	m := paxos.Accept{Ballot: ballot.Ballot{Round: 3, Node: 1}, Slot: 9, Commit: 8,
		Cmds: []protocols.Command{{ID: protocols.CommandID{Client: 1, Seq: 2}, Keys: []string{"k"}, Payload: []byte("v")}}}
	ts[0].Send(2, m)
	eventually(ctx, t, func() bool { return recs[1].count() == 1 }, "delivery")
	got := recs[1].all()[0]
	require.Equal(t, protocols.NodeID(1), got.from)
	require.Equal(t, m, got.m)

	ts[0].Send(2, "not a paxos message") // cannot be encoded
	ts[0].Send(7, tag(1, 0))             // nobody joined as 7
	require.Equal(t, uint64(2), nw.Stats(1).Dropped)

	// A restarted node rejoins; sends to a closed node are dropped.
	require.NoError(t, ts[1].Close())
	ts[0].Send(2, tag(1, 1))
	require.Equal(t, uint64(3), nw.Stats(1).Dropped)
	r := &recorder{}
	nw.Join(2, r.handle)
	ts[0].Send(2, tag(1, 2))
	eventually(ctx, t, func() bool { return r.has(1, tag(1, 2)) }, "delivery after rejoin")
	require.Panics(t, func() { nw.Join(2, r.handle) })
}

func TestNetworkSendNeverBlocks(t *testing.T) {
	noLeaks(t)
	ctx := testCtx(t)
	const queueLen = 4
	nw := NewNetworkWithOptions(NetworkOptions{QueueLen: queueLen})
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	nw.Join(2, func(protocols.NodeID, protocols.Message) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	})
	t.Cleanup(func() { require.NoError(t, nw.Close()) })
	defer close(release)
	a := nw.Join(1, func(protocols.NodeID, protocols.Message) {})
	a.Send(2, tag(1, 0))
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("handler never called")
	}
	returnsWithin(ctx, t, "Send", func() {
		for i := range 10 * queueLen {
			a.Send(2, tag(1, i+1))
		}
	})
	require.Equal(t, uint64(9*queueLen), nw.Stats(1).Dropped, "a full inbox drops all but QueueLen")
}

package mencius

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// A scripted cluster for the ack-crash scenario: a queue of messages the
// script delivers or drops, and each replica's records.

type scriptMsg struct {
	from, to protocols.NodeID
	m        protocols.Message
}

type scriptNode struct {
	id   protocols.NodeID
	c    *scriptCluster
	r    *Replica
	recs [][]byte
	down bool
	rng  *rand.Rand
}

func (n *scriptNode) Send(to protocols.NodeID, m protocols.Message) {
	n.c.q = append(n.c.q, scriptMsg{from: n.id, to: to, m: m})
}
func (n *scriptNode) Execute(protocols.Command) {}
func (n *scriptNode) Persist(rec []byte)        { n.recs = append(n.recs, rec) }
func (n *scriptNode) Rand() *rand.Rand          { return n.rng }

type scriptCluster struct {
	t     *testing.T
	peers []protocols.NodeID
	nodes map[protocols.NodeID]*scriptNode
	q     []scriptMsg
}

func newScriptCluster(t *testing.T, n int) *scriptCluster {
	c := &scriptCluster{t: t, nodes: map[protocols.NodeID]*scriptNode{}}
	for i := 1; i <= n; i++ {
		c.peers = append(c.peers, protocols.NodeID(i))
	}
	for _, id := range c.peers {
		c.nodes[id] = &scriptNode{id: id, c: c}
		c.start(id, nil)
	}
	return c
}

// start (re)starts replica id from recs, with empty volatile state.
func (c *scriptCluster) start(id protocols.NodeID, recs [][]byte) {
	c.t.Helper()
	nd := c.nodes[id]
	nd.recs, nd.down = recs, false
	nd.rng = rand.New(rand.NewPCG(uint64(id), uint64(len(recs))))
	r, err := New(protocols.Config{Self: id, Peers: c.peers, F: (len(c.peers) - 1) / 2, SuspectTicks: 10, Recovered: recs, Env: nd})
	require.NoError(c.t, err)
	nd.r = r
}

// pass delivers every queued message that keep accepts, in order, to a
// live replica and discards the others, until the queue is empty or rounds
// passes ran.
func (c *scriptCluster) pass(rounds int, keep func(m scriptMsg) bool) {
	for range rounds {
		if len(c.q) == 0 {
			return
		}
		q := c.q
		c.q = nil
		for _, m := range q {
			if nd := c.nodes[m.to]; keep(m) && !nd.down {
				nd.r.Step(m.from, m.m)
			}
		}
	}
}

// chosen returns the value replica id holds chosen in slot.
func (c *scriptCluster) chosen(id protocols.NodeID, slot uint64) []protocols.Command {
	c.t.Helper()
	e := c.nodes[id].r.at(slot)
	require.NotNil(c.t, e, "replica %d has no slot %d", id, slot)
	require.True(c.t, e.chosen, "replica %d has slot %d unchosen", id, slot)
	return e.cmds
}

// ackCrashX is the command the owner of slot 1 proposes.
var ackCrashX = protocols.Command{ID: protocols.CommandID{Client: 1, Seq: 1}, Keys: []string{"k"}}

// ackCrashScript is the ack-crash scenario at n = 3: replica 1 proposes x
// in its slot 1 and the Accept reaches replica 2 only; 2 votes and answers
// AcceptOK, so x is chosen at 1 (quorum {1, 2}); 1 crashes before anyone
// else learns it; 2 crashes right after its AcceptOK left and restarts
// from its records; replica 3 revokes 1's slots with the quorum {2, 3},
// without the owner. Only 2's durable vote tells 3 that x may have been
// chosen in slot 1. forget, if set, edits replica 2's records before the
// restart. It returns the cluster, with replica 1 still holding its chosen
// slot.
func ackCrashScript(t *testing.T, forget func(recs [][]byte) [][]byte) *scriptCluster {
	c := newScriptCluster(t, 3)
	c.nodes[1].r.Submit(ackCrashX)
	c.pass(1, func(m scriptMsg) bool { return m.to == 2 })
	c.pass(1, func(m scriptMsg) bool { return m.to == 1 })
	require.Equal(t, []protocols.Command{ackCrashX}, c.chosen(1, 1), "x is chosen at 1")
	// 1 crashes; nobody else hears that x is chosen.
	c.nodes[1].down = true
	c.q = nil
	// 2 crashes right after its AcceptOK left and restarts.
	recs := slices.Clone(c.nodes[2].recs)
	if forget != nil {
		recs = forget(recs)
	}
	c.start(2, recs)
	// 3 revokes 1's slots from slot 1.
	c.nodes[3].r.revoke(1, 1)
	c.pass(20, func(scriptMsg) bool { return true })
	return c
}

// TestAckCrashRevocationFindsTheVote: the revoker learns replica 2's
// durable vote and chooses x in slot 1, as the crashed owner did.
func TestAckCrashRevocationFindsTheVote(t *testing.T) {
	c := ackCrashScript(t, nil)
	require.Equal(t, c.chosen(1, 1), c.chosen(3, 1))
	require.Equal(t, c.chosen(1, 1), c.chosen(2, 1))
}

// TestAckCrashScriptCatchesAForgottenVote shows that the script catches the
// bug it is for: with replica 2's accept record removed (what an acceptor
// that answers AcceptOK before persisting leaves), the revoker chooses a
// no-op in slot 1 while replica 1 chose x.
func TestAckCrashScriptCatchesAForgottenVote(t *testing.T) {
	c := ackCrashScript(t, func(recs [][]byte) [][]byte {
		require.Len(t, recs, 1)
		require.Equal(t, recAccept, recs[0][0], "the only record is the vote")
		return nil
	})
	requireSlot1Disagreement(t, c)
}

// requireSlot1Disagreement checks that replicas 1 and 3 chose different
// values in slot 1.
func requireSlot1Disagreement(t *testing.T, c *scriptCluster) {
	t.Helper()
	a, b := c.chosen(1, 1), c.chosen(3, 1)
	require.NotEqual(t, a, b, "the revoker must choose another value than the owner")
	t.Logf("replica 1 chose %v in slot 1, replica 3 chose %v", a, b)
}

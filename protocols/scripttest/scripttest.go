// Package scripttest drives the replicas of one protocol by hand, for
// scripted scenario tests (a replica acks, crashes, restarts, and the
// others recover without the proposer): every message sent waits in one
// queue that the script delivers or drops, and every replica's records
// are kept so that it can restart from them with empty volatile state.
package scripttest

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// Msg is a message in the queue.
type Msg struct {
	From, To protocols.NodeID
	M        protocols.Message
}

// Node is one replica and what it persisted; it is the replica's Env.
type Node[R protocols.Protocol] struct {
	ID   protocols.NodeID
	R    R
	Recs [][]byte // its records, in order
	Down bool     // crashed: messages to it are discarded
	c    *Cluster[R]
	rng  *rand.Rand
}

// Send implements protocols.Env: the message joins the queue.
func (n *Node[R]) Send(to protocols.NodeID, m protocols.Message) {
	n.c.Q = append(n.c.Q, Msg{From: n.ID, To: to, M: m})
}

// Execute implements protocols.Env; scripts read executions off the
// replicas' own state.
func (n *Node[R]) Execute(protocols.Command) {}

// Persist implements protocols.Env: the record is durable at once.
func (n *Node[R]) Persist(rec []byte) { n.Recs = append(n.Recs, rec) }

// Rand implements protocols.Env, seeded by the node and its restart.
func (n *Node[R]) Rand() *rand.Rand { return n.rng }

// Cluster is n replicas with ids 1..n, f = (n-1)/2 and SuspectTicks 10.
type Cluster[R protocols.Protocol] struct {
	T     testing.TB
	Peers []protocols.NodeID
	Nodes map[protocols.NodeID]*Node[R]
	Q     []Msg // messages sent and not yet delivered or dropped
	mk    func(protocols.Config) (R, error)
}

// New starts a cluster of n replicas made by mk (the protocol's
// constructor).
func New[R protocols.Protocol](t testing.TB, n int, mk func(protocols.Config) (R, error)) *Cluster[R] {
	c := &Cluster[R]{T: t, Nodes: map[protocols.NodeID]*Node[R]{}, mk: mk}
	for i := 1; i <= n; i++ {
		c.Peers = append(c.Peers, protocols.NodeID(i))
	}
	for _, id := range c.Peers {
		c.Nodes[id] = &Node[R]{ID: id, c: c}
		c.Start(id, nil)
	}
	return c
}

// Start (re)starts replica id from recs, with empty volatile state.
func (c *Cluster[R]) Start(id protocols.NodeID, recs [][]byte) {
	c.T.Helper()
	nd := c.Nodes[id]
	nd.Recs, nd.Down = recs, false
	nd.rng = rand.New(rand.NewPCG(uint64(id), uint64(len(recs))))
	r, err := c.mk(protocols.Config{Self: id, Peers: c.Peers, F: (len(c.Peers) - 1) / 2, SuspectTicks: 10, Recovered: recs, Env: nd})
	require.NoError(c.T, err)
	nd.R = r
}

// Pass delivers every queued message that keep accepts, in order, to a
// live replica and discards the others, until the queue is empty or
// rounds passes ran.
func (c *Cluster[R]) Pass(rounds int, keep func(m Msg) bool) {
	for range rounds {
		if len(c.Q) == 0 {
			return
		}
		q := c.Q
		c.Q = nil
		for _, m := range q {
			if nd := c.Nodes[m.To]; keep(m) && !nd.Down {
				nd.R.Step(m.From, m.M)
			}
		}
	}
}

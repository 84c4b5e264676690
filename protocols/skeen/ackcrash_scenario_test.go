package skeen

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// A scripted single-group cluster for the ack-crash scenario: a queue of
// messages the script delivers or drops, and each process's records.

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

// start (re)starts process id from recs, with empty volatile state.
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
// live process and discards the others, until the queue is empty or
// rounds passes ran.
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

// elect ticks process id alone, delivering every message to the live
// processes after each tick, until it leads its group's Paxos instance.
func (c *scriptCluster) elect(id protocols.NodeID) {
	c.t.Helper()
	for range 200 {
		if c.nodes[id].r.Leader() == id {
			return
		}
		c.nodes[id].r.Tick()
		c.pass(10, func(scriptMsg) bool { return true })
	}
	c.t.Fatalf("process %d did not become leader", id)
}

// ackCrashCmd is a command of the ack-crash script.
func ackCrashCmd(client uint64) protocols.Command {
	return protocols.Command{ID: protocols.CommandID{Client: client, Seq: 1}, Keys: []string{"k"}}
}

// ackCrashScript is the ack-crash scenario in one group {1, 2, 3}: leader
// 1 orders x, whose log entry's Accept reaches process 2 only; 2 persists
// its vote and answers, so the entry is chosen at 1 (quorum {1, 2}), which
// stamps and delivers x; 1 crashes before any Commit leaves; 2 crashes
// right after its answer left and restarts from its records; process 3
// takes over the group's Paxos instance with the quorum {2, 3}, without
// the old leader, and orders its own y. Only 2's durable vote tells 3 of
// x. forget, if set, edits process 2's records before the restart. It
// returns the cluster, with process 1 still holding its delivery.
func ackCrashScript(t *testing.T, forget func(recs [][]byte) [][]byte) *scriptCluster {
	c := newScriptCluster(t, 3)
	c.elect(1)
	x, y := ackCrashCmd(1), ackCrashCmd(3)
	c.nodes[1].r.Submit(x)
	c.pass(1, func(m scriptMsg) bool { return m.to != 3 })
	c.pass(1, func(m scriptMsg) bool { return m.to == 1 })
	require.Equal(t, []protocols.CommandID{x.ID}, c.nodes[1].r.order, "1 delivers x")
	require.Empty(t, c.nodes[3].r.order)
	// 1 crashes; its Commit never leaves.
	c.nodes[1].down = true
	c.q = nil
	// 2 crashes right after its answer left and restarts.
	recs := slices.Clone(c.nodes[2].recs)
	if forget != nil {
		recs = forget(recs)
	}
	c.start(2, recs)
	// 3 takes over without 1 and orders y.
	c.elect(3)
	c.nodes[3].r.Submit(y)
	c.pass(20, func(scriptMsg) bool { return true })
	return c
}

// TestAckCrashNewLeaderFindsTheVote: the new leader learns process 2's
// durable vote and delivers x first, as the crashed leader did, then y.
func TestAckCrashNewLeaderFindsTheVote(t *testing.T) {
	c := ackCrashScript(t, nil)
	require.Equal(t, []protocols.CommandID{ackCrashCmd(1).ID, ackCrashCmd(3).ID}, c.nodes[3].r.order)
}

// TestAckCrashScriptCatchesAForgottenVote shows that the script catches the
// bug it is for: with process 2's last record (its vote for x's entry)
// removed, what a process that answers before persisting leaves, process 3
// delivers y first while process 1 delivered x first.
func TestAckCrashScriptCatchesAForgottenVote(t *testing.T) {
	c := ackCrashScript(t, func(recs [][]byte) [][]byte {
		require.Len(t, recs, 2, "2's records are its promise to 1 and its vote")
		return recs[:1]
	})
	requireFirstDisagreement(t, c)
}

// requireFirstDisagreement checks that processes 1 and 3 delivered
// different commands first.
func requireFirstDisagreement(t *testing.T, c *scriptCluster) {
	t.Helper()
	a, b := c.nodes[1].r.order, c.nodes[3].r.order
	require.NotEmpty(t, a)
	require.NotEmpty(t, b, "3 delivers")
	require.NotEqual(t, a[0], b[0], "the new leader must deliver another command first than the old one")
	t.Logf("process 1 delivered %v first, process 3 %v", a[0], b[0])
}

package wbcast

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// pass delivers every queued message that keep accepts, in order, and
// discards the others, until the queue is empty or rounds passes ran.
func (c *cluster) pass(rounds int, keep func(e envelope) bool) {
	for range rounds {
		if len(c.queue) == 0 {
			return
		}
		q := c.queue
		c.queue = nil
		for _, e := range q {
			if keep(e) {
				c.nodes[e.to].r.Step(e.from, e.m)
			}
		}
	}
}

// ackCrashCmd is a command of the ack-crash script, to group 0.
func ackCrashCmd(client uint64) protocols.Command {
	return protocols.Command{ID: protocols.CommandID{Client: client, Seq: 1}, Keys: []string{"k0"}, Payload: []byte("x")}
}

// ackCrashScript is the ack-crash scenario in group 0 = {1, 2, 3}: leader 1
// multicasts x to its group and the ACCEPT reaches member 2 only; 2
// persists it and acknowledges, so 1 commits x with the majority {1, 2}
// and delivers it first; 1 crashes before any Deliver leaves; 2 crashes
// right after its ack left and restarts from its records; member 3 takes
// over with the majority {2, 3}, without the old leader, and then orders
// its own y. Only 2's durable record tells 3 of x. forget, if set, edits
// member 2's records before the restart. It returns the cluster, with
// member 1 still holding its delivery.
func ackCrashScript(t *testing.T, forget func(recs [][]byte) [][]byte) *cluster {
	c := newCluster(t, 1)
	alive := func(e envelope) bool { return e.to != 1 }
	x, y := ackCrashCmd(1), ackCrashCmd(3)
	c.nodes[1].r.Submit(x)
	c.pass(1, func(e envelope) bool { return e.to == 1 || e.to == 2 })
	c.pass(1, func(e envelope) bool { return e.to == 1 && e.from == 2 })
	require.Equal(t, map[uint64]protocols.CommandID{1: x.ID}, c.sequence(1), "1 delivers x first")
	// 1 crashes; its Delivers never leave.
	c.queue = nil
	// 2 crashes right after its ack left and restarts.
	n2 := c.nodes[2]
	recs := slices.Clone(n2.log)
	if forget != nil {
		recs = forget(recs)
	}
	n2.log = recs
	n2.r = c.start(n2, nil, recs)
	// 3 takes over without 1 and orders y.
	c.nodes[3].r.campaign()
	c.pass(20, alive)
	require.Equal(t, leader, c.nodes[3].r.status, "3 leads")
	c.nodes[3].r.Submit(y)
	c.pass(20, alive)
	return c
}

// TestAckCrashNewLeaderFindsTheAccept: the new leader learns member 2's
// durable ACCEPT and delivers x first, as the crashed leader did, then y.
func TestAckCrashNewLeaderFindsTheAccept(t *testing.T) {
	c := ackCrashScript(t, nil)
	want := map[uint64]protocols.CommandID{1: ackCrashCmd(1).ID, 2: ackCrashCmd(3).ID}
	require.Equal(t, want, c.sequence(3))
	require.Equal(t, want, c.sequence(2))
}

// TestAckCrashScriptCatchesAForgottenAccept shows that the script catches
// the bug it is for: with member 2's accept record removed (what a member
// that acknowledges before persisting leaves), member 3 delivers y first
// while member 1 delivered x first.
func TestAckCrashScriptCatchesAForgottenAccept(t *testing.T) {
	c := ackCrashScript(t, func(recs [][]byte) [][]byte {
		require.Len(t, recs, 1, "the only record is the accept")
		return nil
	})
	requireFirstDisagreement(t, c)
}

// requireFirstDisagreement checks that members 1 and 3 delivered different
// commands first.
func requireFirstDisagreement(t *testing.T, c *cluster) {
	t.Helper()
	a, b := c.sequence(1)[1], c.sequence(3)[1]
	require.NotEqual(t, a, b, "the new leader must deliver another command first than the old one")
	t.Logf("member 1 delivered %v first, member 3 %v", a, b)
}

package epaxos

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

func (c *cluster) recover(at protocols.NodeID, d Dot) {
	r := c.reps[at]
	r.startRecovery(r.get(d))
}

func (c *cluster) tick(id protocols.NodeID, n int) {
	for range n {
		c.reps[id].Tick()
	}
}

func ids(cs []protocols.Command) []protocols.CommandID {
	var out []protocols.CommandID
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func TestFastPathWithoutConflicts(t *testing.T) {
	for _, n := range []int{3, 5, 7} {
		c := newCluster(t, n, (n-1)/2, 0)
		c.reps[1].Submit(cmd(1, "a"))
		c.reps[2].Submit(cmd(2, "b"))
		c.stabilize()
		for _, id := range c.ids {
			require.Len(t, c.envs[id].executed, 2, "n=%d replica %d", n, id)
		}
		require.Equal(t, 1, c.envs[1].fast)
		require.Equal(t, 1, c.envs[2].fast)
		c.checkInvariants()
	}
}

// TestSlowPathOrdersConcurrentConflicts submits two conflicting commands at
// once: replicas see them in different orders, the deps differ, and the
// slow path must still give every replica the same execution order.
func TestSlowPathOrdersConcurrentConflicts(t *testing.T) {
	c := newCluster(t, 3, 1, 1)
	c.reps[1].Submit(cmd(1, "k"))
	c.reps[3].Submit(cmd(3, "k"))
	// 2 sees 3's command first, 1 and 3 see their own first.
	c.deliver(and(to(2), from(3)))
	c.stabilize()
	c.tick(1, 300)
	c.tick(3, 300)
	c.stabilize()
	var orders [][]protocols.CommandID
	for _, id := range c.ids {
		require.Len(t, c.envs[id].executed, 2)
		orders = append(orders, ids(c.envs[id].executed))
	}
	require.Equal(t, orders[0], orders[1])
	require.Equal(t, orders[0], orders[2])
	require.Positive(t, c.envs[1].slow+c.envs[3].slow)
	c.checkInvariants()
}

// iplAnalogue runs the EPaxos* analogue of the IPL 2020 counterexample
// (PROTOCOL-NOTES §1.10) at n = 3, f = e = 1 and returns what p1 and p2
// committed for id. beforeLast, if set, runs before step (5).
func iplAnalogue(t *testing.T, beforeLast func()) (c *cluster, id Dot, p1, p2 InstanceState) {
	c = newCluster(t, 3, 1, 1)
	x, id := Dot{Node: 2, Seq: 1}, Dot{Node: 1, Seq: 1}
	// (1) p2 submits x; its PreAccepts are held (never delivered).
	c.reps[2].Submit(cmd(2, "k"))
	c.drop(forDot(x))
	// (2) p1 submits id with D0 = {}; only p2 answers, with {x}; p1 goes
	// slow after its fast-path timeout, Accept(0, id, c, {x}) applied
	// locally only.
	c.reps[1].Submit(cmd(1, "k"))
	c.deliver(and(is[PreAccept], to(2)))
	c.deliver(and(is[PreAcceptOK], to(1)))
	c.drop(to(3))
	c.tick(1, c.reps[1].fastTimeout)
	s, _ := c.reps[1].Instance(id)
	require.Equal(t, Accepted, s.Phase)
	require.Equal(t, []Dot{x}, s.Deps)
	c.drop(is[Accept])
	// (3) p3, which knows nothing of id, recovers with Q = {p2, p3}: no R
	// (p2's dep differs from initDep), so Accept(Nop) applied at p3 only.
	c.recover(3, id)
	c.drop(to(1))
	c.deliver(and(is[Recover], to(2)))
	c.deliver(and(is[RecoverOK], to(3)))
	s, _ = c.reps[3].Instance(id)
	require.Equal(t, Accepted, s.Phase)
	require.True(t, s.Val.Nop)
	c.drop(forDot(id))
	// (4) p2 recovers with Q = {p1, p2}: p1 reports its ballot-0 Accept, so
	// p2 proposes (c, {x}); p1 and p2 accept; p2 commits.
	c.recover(2, id)
	c.drop(to(3))
	c.deliver(and(is[Recover], to(1)))
	c.deliver(and(is[RecoverOK], to(2)))
	c.deliver(and(is[Accept], to(1)))
	c.deliver(and(is[AcceptOK], to(2)))
	p2, _ = c.reps[2].Instance(id)
	require.Equal(t, Committed, p2.Phase)
	require.Equal(t, []Dot{x}, p2.Deps)
	c.drop(and(is[Commit], to(1, 3))) // the commit reaches nobody else
	if beforeLast != nil {
		beforeLast()
	}
	// (5) p1 recovers twice in a row (its own replies are handled at once)
	// before p3's replies arrive.
	c.recover(1, id)
	c.recover(1, id)
	c.drop(to(2))
	c.deliver(and(is[Recover], to(3)))
	c.deliver(and(is[RecoverOK], to(1)))
	c.deliver(and(is[Accept], to(3)))
	c.deliver(and(is[AcceptOK], to(1)))
	p1, _ = c.reps[1].Instance(id)
	require.Equal(t, Committed, p1.Phase)
	return c, id, p1, p2
}

// TestIPLCounterexampleKeepsAgreement: with the separate vote ballot, p1's
// last recovery sees p1's vote at p2's ballot above p3's Nop vote and
// commits the same (c, {x}) as p2.
func TestIPLCounterexampleKeepsAgreement(t *testing.T) {
	c, _, p1, p2 := iplAnalogue(t, nil)
	require.Equal(t, p2.Val, p1.Val)
	require.Equal(t, p2.Deps, p1.Deps)
	c.stabilize()
	c.checkInvariants()
}

// TestValidateWithEmptyConflictsCommitsTheCommand: the coordinator
// crashes after one PreAccept; the recovery finds an R, validates it, finds
// no conflicting command and commits the command with its initial deps.
func TestValidateWithEmptyConflictsCommitsTheCommand(t *testing.T) {
	c := newCluster(t, 3, 1, 1)
	id := Dot{Node: 1, Seq: 1}
	c.reps[1].Submit(cmd(1, "k"))
	c.deliver(and(is[PreAccept], to(2)))
	c.drop(func(e envelope) bool { return e.to == 1 || e.from == 1 }) // p1 is down
	c.recover(3, id)
	c.drop(to(1))
	c.deliver(and(is[Recover], to(2)))
	c.deliver(is[RecoverOK])
	require.Equal(t, validating, c.reps[3].inst[id].rec.stage)
	c.deliver(and(is[Validate], to(2)))
	c.deliver(is[ValidateOK])
	c.drop(to(1))
	c.deliver(func(e envelope) bool { return e.to != 1 })
	s, _ := c.reps[3].Instance(id)
	require.Equal(t, Committed, s.Phase)
	require.False(t, s.Val.Nop)
	require.Empty(t, s.Deps)
	for _, p := range []protocols.NodeID{2, 3} {
		require.Equal(t, []protocols.CommandID{{Client: 1, Seq: 1}}, ids(c.envs[p].executed))
	}
	c.checkInvariants()
}

// TestWaitingResolvesWhenTheConflictCommitsWithTheCommand: the recovery
// of id finds y in I (y is uncommitted, its coordinator p3 is in Q), sends
// Waiting, and proceeds with id's value once y commits with id in its deps.
func TestWaitingResolvesWhenTheConflictCommitsWithTheCommand(t *testing.T) {
	c := newCluster(t, 3, 1, 1)
	id, y := Dot{Node: 1, Seq: 1}, Dot{Node: 3, Seq: 1}
	down := func(e envelope) bool { return e.to == 1 || e.from == 1 }
	c.reps[1].Submit(cmd(1, "k"))
	c.deliver(and(is[PreAccept], to(2)))
	c.drop(down)
	c.reps[3].Submit(cmd(3, "k")) // p3 does not know id: D0 = {}
	var held []envelope
	for _, e := range c.queue {
		if is[PreAccept](e) && e.to == 2 {
			held = append(held, e)
		}
	}
	c.drop(forDot(y))
	c.recover(3, id)
	c.drop(down)
	c.deliver(and(is[Recover], to(2)))
	c.deliver(is[RecoverOK])
	c.deliver(and(is[Validate], to(2)))
	c.deliver(is[ValidateOK])
	rec := c.reps[3].inst[id].rec
	require.NotNil(t, rec)
	require.Equal(t, waiting, rec.stage)
	require.Equal(t, []Dot{y}, rec.ids)
	c.deliver(and(is[Waiting], to(2)))
	// y's PreAccept reaches p2, which knows id: y goes slow with {id}.
	c.queue = append(c.queue, held...)
	c.deliver(func(e envelope) bool { return !down(e) })
	c.tick(3, c.reps[3].fastTimeout)
	c.drop(down)
	c.deliver(func(e envelope) bool { return !down(e) })
	sy, _ := c.reps[3].Instance(y)
	require.Equal(t, Committed, sy.Phase)
	require.Equal(t, []Dot{id}, sy.Deps)
	s, _ := c.reps[3].Instance(id)
	require.Equal(t, Committed, s.Phase)
	require.False(t, s.Val.Nop)
	for _, p := range []protocols.NodeID{2, 3} {
		require.Equal(t, []protocols.CommandID{{Client: 1, Seq: 1}, {Client: 3, Seq: 1}}, ids(c.envs[p].executed), "replica %d", p)
	}
	c.checkInvariants()
	// p1 comes back and learns everything.
	c.stabilize()
	c.checkInvariants()
}

// TestConcurrentRecoveriesAgree: p2 and p3 recover the same instance at
// the same time, with every interleaving of their messages the queue
// order gives; ticks retry the loser. Both end with one commit.
func TestConcurrentRecoveriesAgree(t *testing.T) {
	for _, reached := range [][]protocols.NodeID{nil, {2}, {2, 3}} {
		c := newCluster(t, 3, 1, 1)
		id := Dot{Node: 1, Seq: 1}
		down := func(e envelope) bool { return e.to == 1 || e.from == 1 }
		c.reps[1].Submit(cmd(1, "k"))
		c.deliver(and(is[PreAccept], to(reached...)))
		c.drop(down)
		c.recover(2, id)
		c.recover(3, id)
		for i := 0; i < 20000; i++ {
			c.drop(down)
			c.deliver(func(e envelope) bool { return !down(e) })
			s2, _ := c.reps[2].Instance(id)
			s3, _ := c.reps[3].Instance(id)
			if s2.Phase == Committed && s3.Phase == Committed {
				break
			}
			c.reps[2].Tick()
			c.reps[3].Tick()
		}
		got := c.committed(id)
		require.Len(t, got, 2, "reached %v", reached)
		c.checkInvariants()
		// Whatever was decided, p1 learns the same once it is back.
		c.recover(1, id)
		c.stabilize()
		c.checkInvariants()
		require.Len(t, c.committed(id), 3)
	}
}

// TestRestartReplaysRecordsAndReexecutes restarts a replica from its
// records: it keeps its promises and votes, and re-executes what it had
// committed in a new incarnation.
func TestRestartReplaysRecordsAndReexecutes(t *testing.T) {
	c := newCluster(t, 3, 1, 1)
	c.reps[1].Submit(cmd(1, "k"))
	c.reps[2].Submit(cmd(2, "k"))
	c.stabilize()
	c.tick(1, 300)
	c.tick(2, 300)
	c.stabilize()
	before := ids(c.envs[3].executed)
	require.Len(t, before, 2)
	recs := slices.Clone(c.envs[3].records)
	c.start(3, 1, 1, recs)
	c.stabilize()
	require.Equal(t, before, ids(c.envs[3].executed))
	for _, d := range c.reps[1].Dots() {
		s, _ := c.reps[3].Instance(d)
		require.Equal(t, Committed, s.Phase)
	}
	// The restarted replica keeps coordinating with fresh sequence numbers.
	c.reps[3].Submit(cmd(3, "k"))
	c.stabilize()
	c.tick(3, 300)
	c.stabilize()
	require.Len(t, c.envs[3].executed, 3)
	c.checkInvariants()
}

func TestConfigValidation(t *testing.T) {
	peers := func(n int) []protocols.NodeID {
		var p []protocols.NodeID
		for i := 1; i <= n; i++ {
			p = append(p, protocols.NodeID(i))
		}
		return p
	}
	for _, tc := range []struct {
		n, f, e int
		ok      bool
		fast    int
	}{
		{3, 1, 0, true, 2}, {5, 2, 0, true, 3}, {7, 3, 0, true, 5}, {5, 2, 1, true, 4},
		{7, 2, 2, true, 5}, {13, 6, 0, true, 9}, {5, 2, 3, false, 0}, {5, 1, 2, false, 0},
	} {
		r, err := New(protocols.Config{Self: 1, Peers: peers(tc.n), F: tc.f, E: tc.e, Env: newNullEnv()})
		if !tc.ok {
			require.ErrorIs(t, err, protocols.ErrConfig, "%+v", tc)
			continue
		}
		require.NoError(t, err, "%+v", tc)
		_, fast, slow := r.Thresholds()
		require.Equal(t, tc.fast, fast, "%+v", tc)
		require.Equal(t, tc.n-tc.f, slow)
	}
}

// TestLateRecoverOKDoesNotChangeTheDecision: once a recovery has chosen its
// value (here Nop, from p2 and p3), a late RecoverOK (p1's ballot-0 Accept)
// must not make it propose a second value at the same ballot.
func TestLateRecoverOKDoesNotChangeTheDecision(t *testing.T) {
	c := newCluster(t, 3, 1, 1)
	x, id := Dot{Node: 2, Seq: 1}, Dot{Node: 1, Seq: 1}
	c.reps[2].Submit(cmd(2, "k"))
	c.drop(forDot(x))
	c.reps[1].Submit(cmd(1, "k"))
	c.deliver(and(is[PreAccept], to(2)))
	c.deliver(and(is[PreAcceptOK], to(1)))
	c.drop(to(3))
	c.tick(1, c.reps[1].fastTimeout)
	c.drop(is[Accept])
	c.recover(3, id)
	var late []envelope
	for _, e := range c.queue {
		if is[Recover](e) && e.to == 1 {
			late = append(late, e)
		}
	}
	c.drop(to(1))
	c.deliver(and(is[Recover], to(2)))
	c.deliver(and(is[RecoverOK], to(3)))
	s, _ := c.reps[3].Instance(id)
	require.True(t, s.Val.Nop)
	c.drop(forDot(id))
	// p1's reply arrives after the decision.
	c.queue = append(c.queue, late...)
	c.deliver(and(is[Recover], to(1)))
	c.deliver(and(is[RecoverOK], to(3)))
	for _, e := range c.queue {
		if a, ok := e.m.(Accept); ok && a.Dot == id && !a.Val.Nop {
			t.Fatalf("second proposal at the same ballot: %v", e)
		}
	}
	s, _ = c.reps[3].Instance(id)
	require.True(t, s.Val.Nop)
}

// TestWaitingBreaksACycleWithAnotherRecoverysWaiting covers wait rule c
// at n = 5, f = e = 2: p4 recovers y and waits on id; p2 recovers id and
// waits on y; p4's Waiting(y, |Rmax| = 2) exceeds n−f−e = 1, which tells p2
// that y may have been fast-committed without id, so id becomes Nop; y's
// recovery then sees id committed as Nop and commits y.
func TestWaitingBreaksACycleWithAnotherRecoverysWaiting(t *testing.T) {
	c := newCluster(t, 5, 2, 2)
	id, y := Dot{Node: 1, Seq: 1}, Dot{Node: 5, Seq: 1}
	down := func(e envelope) bool { return e.to == 1 || e.from == 1 }
	// id reaches p2 only; p1 is down afterwards.
	c.reps[1].Submit(cmd(1, "k"))
	c.deliver(and(is[PreAccept], to(2)))
	c.drop(forDot(id))
	// y reaches p3 and p4, which do not know id.
	c.reps[5].Submit(cmd(5, "k"))
	c.deliver(and(is[PreAccept], to(3, 4)))
	c.drop(forDot(y))
	// p4 recovers y with Q = {p4, p2, p3}: R = {p3, p4}; p2 reports id in I.
	c.recover(4, y)
	c.drop(and(is[Recover], to(1, 5)))
	c.deliver(and(is[Recover], to(2, 3)))
	c.deliver(and(is[RecoverOK], to(4)))
	c.deliver(and(is[Validate], to(2, 3)))
	c.deliver(and(is[ValidateOK], to(4)))
	ry := c.reps[4].inst[y].rec
	require.Equal(t, waiting, ry.stage)
	require.Equal(t, []Dot{id}, ry.ids)
	require.Equal(t, 2, ry.rmax)
	c.drop(down)
	// p2 recovers id with Q = {p2, p3, p5}: R = {p2}; I = {y}, whose
	// coordinator p5 is in Q: p2 waits. p4's Waiting is still in flight.
	c.recover(2, id)
	c.drop(and(is[Recover], to(1, 4)))
	c.deliver(and(is[Recover], to(3, 5)))
	c.deliver(and(is[RecoverOK], to(2)))
	c.deliver(and(is[Validate], to(3, 5)))
	c.deliver(and(is[ValidateOK], to(2)))
	rid := c.reps[2].inst[id].rec
	require.Equal(t, waiting, rid.stage)
	require.Equal(t, []Dot{y}, rid.ids)
	// Waiting(y, 2) reaches p2: rule c, id becomes Nop; then y commits.
	c.deliver(and(is[Waiting], from(4), to(2)))
	s, _ := c.reps[2].Instance(id)
	require.Equal(t, Accepted, s.Phase)
	require.True(t, s.Val.Nop)
	c.drop(down)
	c.deliver(func(e envelope) bool { return !down(e) })
	sid, _ := c.reps[4].Instance(id)
	require.Equal(t, Committed, sid.Phase)
	require.True(t, sid.Val.Nop)
	sy, _ := c.reps[4].Instance(y)
	require.Equal(t, Committed, sy.Phase)
	require.False(t, sy.Val.Nop)
	require.Empty(t, sy.Deps)
	c.checkInvariants()
	c.stabilize()
	c.checkInvariants()
}

// TestWaitingEndsInNopWhenTheConflictCommitsWithoutTheCommand covers wait
// rule a at n = 5, f = e = 2: p2 recovers id and waits on y; y is then
// fast-committed by its coordinator without id in its deps, so id cannot
// have been fast-committed and becomes Nop.
func TestWaitingEndsInNopWhenTheConflictCommitsWithoutTheCommand(t *testing.T) {
	c := newCluster(t, 5, 2, 2)
	id, y := Dot{Node: 1, Seq: 1}, Dot{Node: 5, Seq: 1}
	down := func(e envelope) bool { return e.to == 1 || e.from == 1 }
	c.reps[1].Submit(cmd(1, "k"))
	c.deliver(and(is[PreAccept], to(2)))
	c.drop(forDot(id))
	c.reps[5].Submit(cmd(5, "k"))
	c.deliver(and(is[PreAccept], to(3, 4)))
	c.drop(and(forDot(y), to(1, 2)))
	c.recover(2, id)
	c.drop(and(is[Recover], to(1, 4)))
	c.deliver(and(is[Recover], to(3, 5)))
	c.deliver(and(is[RecoverOK], to(2)))
	c.deliver(and(is[Validate], to(3, 5)))
	c.deliver(and(is[ValidateOK], to(2)))
	rid := c.reps[2].inst[id].rec
	require.Equal(t, waiting, rid.stage)
	require.Equal(t, []Dot{y}, rid.ids)
	// y's PreAcceptOKs from p3 and p4 reach p5: fast commit with {}.
	c.deliver(and(is[PreAcceptOK], to(5)))
	sy, _ := c.reps[5].Instance(y)
	require.Equal(t, Committed, sy.Phase)
	require.Empty(t, sy.Deps)
	c.deliver(and(is[Commit], forDot(y), to(2)))
	s, _ := c.reps[2].Instance(id)
	require.Equal(t, Accepted, s.Phase)
	require.True(t, s.Val.Nop)
	c.drop(down)
	c.deliver(func(e envelope) bool { return !down(e) })
	s, _ = c.reps[3].Instance(id)
	require.Equal(t, Committed, s.Phase)
	require.True(t, s.Val.Nop)
	c.checkInvariants()
	c.stabilize()
	c.checkInvariants()
}

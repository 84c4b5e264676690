package atlas

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
)

// run ticks every live replica `ticks` times, delivering the whole queue
// after each tick (no loss): the executed frontiers spread and garbage
// collection catches up.
func (c *cluster) run(ticks int) {
	for range ticks {
		c.tickAll()
		for len(c.queue) > 0 {
			c.step(0)
		}
	}
}

// requireBounded fails unless replica id keeps nothing of the history:
// no instance, no pending dot, no executed id, no conflict-index entry,
// nothing waiting in the graph and no executed dot above a gap.
func (c *cluster) requireBounded(id protocols.NodeID) {
	r := c.rep(id)
	require.Empty(c.t, r.inst, "instances kept at %d", id)
	require.Empty(c.t, r.pending, "pending at %d", id)
	require.Zero(c.t, r.done.Len(), "executed ids kept at %d", id)
	require.Empty(c.t, r.index, "conflict index at %d", id)
	require.Zero(c.t, r.graph.Pending(), "graph at %d", id)
	for _, p := range c.peers {
		require.Empty(c.t, r.graph.ExecutedAbove(p), "executed dots of %d above a gap at %d", p, id)
	}
}

// TestCheckpointRestart: a replica checkpoints, goes on, crashes and
// restarts from the checkpoint and the records persisted after it. It
// executes the commands after the checkpoint, in the same order as every
// other replica, and none of those before it again.
func TestCheckpointRestart(t *testing.T) {
	c := newCluster(t, 5, 1, 11)
	for i := range 6 {
		c.submit(protocols.NodeID(1+i%5), "k", fmt.Sprintf("x%d", i%2))
	}
	c.settle(200_000)
	require.True(t, c.quiet())
	c.checkpoint(1)
	r := c.rep(1)
	require.Zero(t, r.done.Len(), "a checkpoint forgets the executed ids")
	before := slices.Clone(c.executedAt(1))
	require.Len(t, before, 6)

	// More commands; node 1 takes part, then loses its volatile state.
	for i := range 6 {
		c.submit(protocols.NodeID(1+i%5), "k")
	}
	for range 40 {
		c.step(0)
	}
	c.crash(1)
	require.NotEmpty(t, c.envs[0].records, "records after the checkpoint")
	c.restart(1)
	c.settle(400_000)
	require.True(t, c.quiet())
	for _, x := range c.envs[0].execs {
		require.NotContains(t, before, x.ID, "executed again after the checkpoint")
	}
	for id := protocols.NodeID(1); id <= 5; id++ {
		require.Equal(t, c.executedAt(2), c.executedAt(id), "node %d", id)
	}
	require.Len(t, c.executedAt(1), 12)
	c.checkOrder()
}

// TestCheckpointKeepsPromises: a replica that joined a recovery ballot
// keeps it across a checkpoint and a restart, and a record persisted after
// the checkpoint (a higher ballot) wins over it.
func TestCheckpointKeepsPromises(t *testing.T) {
	c := newCluster(t, 5, 1, 12) // fast quorum {1, 2, 3}
	cmd := c.submit(1, "k")
	d := Dot{Node: 1, Seq: 1}
	c.deliver(func(e envelope) bool { return (e.to == 2 || e.to == 3) && isMsg[MCollect](e) })
	c.drop(all)
	c.crash(1)
	r4 := c.rep(4)
	r4.recover(r4.lookup(d))
	c.deliver(func(e envelope) bool { return e.to == 3 && isMsg[MRec](e) })
	c.drop(all)
	b1 := ballot.Ballot{Round: 1, Node: 4}
	was := *c.rep(3).inst[d]
	require.Equal(t, b1, was.bal)
	require.Equal(t, phRecover, was.phase)

	c.checkpoint(3)
	c.crash(3)
	c.restart(3)
	in := c.rep(3).inst[d]
	require.NotNil(t, in)
	require.Equal(t, was.bal, in.bal)
	require.Equal(t, was.phase, in.phase)
	require.True(t, in.collected)
	require.Equal(t, was.cdeps, in.cdeps)
	require.Equal(t, was.quorum, in.quorum)
	require.Equal(t, cmd.ID, in.cmd.ID)
	// A proposal of a lower ballot is refused.
	c.rep(3).Step(1, MConsensus{Dot: d, Ballot: ballot.Ballot{Node: 1}, Cmd: cmd})
	require.Empty(t, c.queue, "accepted below the promised ballot")

	// A higher ballot joined after the checkpoint is in a later record.
	r4.recover(r4.inst[d])
	c.deliver(func(e envelope) bool { return e.to == 3 && isMsg[MRec](e) })
	c.drop(all)
	b2 := ballot.Ballot{Round: 2, Node: 4}
	require.Equal(t, b2, c.rep(3).inst[d].bal)
	c.crash(3)
	c.restart(3)
	require.Equal(t, b2, c.rep(3).inst[d].bal)
	c.rep(3).Step(4, MConsensus{Dot: d, Ballot: b1, Cmd: cmd})
	require.Empty(t, c.queue, "accepted below the promised ballot")

	c.restart(1)
	c.settle(400_000)
	require.True(t, c.quiet())
	require.False(t, c.committedVal(d).nop, "2 and 3 collected: the recovery keeps the command")
	c.checkOrder()
}

// TestCheckpointForgetsStable: once every replica executed everything and
// garbage collection caught up, a checkpoint keeps no instance, and a stale
// message about a forgotten dot creates no state and gets no answer, before
// and after a restart from the checkpoint.
func TestCheckpointForgetsStable(t *testing.T) {
	c := newCluster(t, 3, 1, 13)
	var cmds []protocols.Command
	for i := range 9 {
		cmds = append(cmds, c.submit(protocols.NodeID(1+i%3), fmt.Sprintf("k%d", i%4)))
	}
	c.settle(200_000)
	c.run(5)
	for id := protocols.NodeID(1); id <= 3; id++ {
		c.checkpoint(id)
		c.requireBounded(id)
	}
	stale := func() {
		d := Dot{Node: 2, Seq: 1}
		r := c.rep(1)
		r.Step(2, MRec{Dot: d, Ballot: ballot.Ballot{Round: 5, Node: 2}, HasCmd: true, Cmd: cmds[1]})
		r.Step(2, MCollect{Dot: d, Cmd: cmds[1], Quorum: c.peers})
		r.Step(2, MConsensus{Dot: d, Ballot: ballot.Ballot{Round: 6, Node: 2}, Nop: true})
		require.Nil(t, r.inst[d])
		require.Empty(t, c.queue)
		// A later command does not depend on the forgotten dot.
		c.submit(1, "k1")
		for _, e := range c.queue {
			if m, ok := e.m.(MCollect); ok {
				require.Empty(t, m.Past)
			}
		}
		c.settle(200_000)
		c.run(5)
	}
	stale()
	c.checkpoint(1)
	c.crash(1)
	c.restart(1)
	stale()
	c.checkOrder()
}

// TestCheckpointWhileAReplicaIsDown: with a replica down, garbage
// collection stops, so checkpoints keep the executed instances (trimmed to
// their commit). A replica that restarts from its checkpoint answers the
// returning replica's recoveries with those commits, the returning replica
// fills the gaps of its executed prefixes, and then everything is stable
// and forgotten.
func TestCheckpointWhileAReplicaIsDown(t *testing.T) {
	c := newCluster(t, 3, 1, 14)
	c.checkpoint(3) // 3 restarts from a checkpoint too
	c.crash(3)
	for i := range 8 {
		c.submit(protocols.NodeID(1+i%2), fmt.Sprintf("k%d", i%3))
	}
	c.settle(200_000)
	c.run(5)
	c.checkpoint(1)
	c.checkpoint(2)
	for _, id := range []protocols.NodeID{1, 2} {
		r := c.rep(id)
		require.Len(t, r.inst, 8, "not stable while 3 is down")
		for _, in := range r.inst {
			require.Equal(t, phCommit, in.phase)
			require.Nil(t, in.cdeps, "executed instances keep only their commit")
		}
	}
	c.crash(1)
	c.restart(1)
	require.Len(t, c.rep(1).inst, 8)
	c.restart(3)
	c.settle(400_000)
	c.run(3 * 10)
	c.settle(400_000)
	c.run(5)
	require.Len(t, c.executedAt(3), 8, "3 learned every commit it missed")
	for id := protocols.NodeID(1); id <= 3; id++ {
		c.checkpoint(id)
		c.requireBounded(id)
	}
	c.checkOrder()
}

// TestCheckpointRejectsMalformed: a checkpoint that is truncated, of
// another deployment or inconsistent is an error, never a panic.
func TestCheckpointRejectsMalformed(t *testing.T) {
	peers := []protocols.NodeID{1, 2, 3}
	load := func(ck []byte, peers []protocols.NodeID) error {
		_, err := New(protocols.Config{Self: 1, Peers: peers, F: 1, Checkpoint: ck, Env: &nopEnv{rnd: rand.New(rand.NewPCG(1, 1))}})
		return err
	}
	seeds := checkpointSeeds(t)
	for _, ck := range seeds {
		require.NoError(t, load(ck, peers))
		for i := range len(ck) {
			_ = load(ck[:i], peers) // must not panic
		}
		require.Error(t, load(ck[:len(ck)-1], peers))
		require.Error(t, load(append(slices.Clone(ck), 0), peers))
		require.Error(t, load(ck, []protocols.NodeID{1, 2, 3, 4, 5}), "another deployment")
	}
	require.Error(t, load([]byte{}, peers))
	require.Error(t, load([]byte{recState}, peers))
	// The stable prefix above the executed one.
	r, err := New(protocols.Config{Self: 1, Peers: peers, F: 1, Env: &nopEnv{rnd: rand.New(rand.NewPCG(1, 1))}})
	require.NoError(t, err)
	r.stable[1] = 3
	require.ErrorContains(t, load(r.Checkpoint(), peers), "stable")
	// An uncommitted instance at an executed dot.
	r, err = New(protocols.Config{Self: 1, Peers: peers, F: 1, Env: &nopEnv{rnd: rand.New(rand.NewPCG(1, 1))}})
	require.NoError(t, err)
	r.graph.MarkExecuted(Dot{Node: 2, Seq: 1})
	r.inst[Dot{Node: 2, Seq: 1}] = &instance{dot: Dot{Node: 2, Seq: 1}, phase: phAccept}
	require.ErrorContains(t, load(r.Checkpoint(), peers), "executed but not committed")
	// An own dot beyond the sequence number.
	r, err = New(protocols.Config{Self: 1, Peers: peers, F: 1, Env: &nopEnv{rnd: rand.New(rand.NewPCG(1, 1))}})
	require.NoError(t, err)
	r.inst[Dot{Node: 1, Seq: 1}] = &instance{dot: Dot{Node: 1, Seq: 1}, phase: phCollect}
	require.ErrorContains(t, load(r.Checkpoint(), peers), "sequence number")
}

// TestRandomSchedulesWithCheckpoints is TestRandomSchedules with
// checkpoints taken at random (and restarts from them). After healing, it
// also checks that state is bounded: once garbage collection catches up,
// a checkpoint at every replica leaves nothing of the history.
func TestRandomSchedulesWithCheckpoints(t *testing.T) {
	for seed := uint64(0); seed < 150; seed++ {
		t.Logf("seed %d", seed)
		c := randomSchedule(t, seed, true)
		c.checkOrder()
		for id := range c.n {
			c.checkpoint(protocols.NodeID(id + 1))
		}
		for range 4 {
			c.run(10)
			c.settle(2_000_000)
		}
		require.True(t, c.quiet(), "seed %d", seed)
		for id := range c.n {
			c.checkpoint(protocols.NodeID(id + 1))
			c.requireBounded(protocols.NodeID(id + 1))
		}
		c.checkOrder()
	}
}

// nopEnv is an Env that drops everything, for decoding tests.
type nopEnv struct{ rnd *rand.Rand }

func (e *nopEnv) Send(protocols.NodeID, protocols.Message) {}
func (e *nopEnv) Execute(protocols.Command)                {}
func (e *nopEnv) Persist([]byte)                           {}
func (e *nopEnv) Rand() *rand.Rand                         { return e.rnd }

// checkpointSeeds are checkpoints of node 1 of a 3-replica cluster: with
// uncommitted instances (a lost MCollectAck, a joined recovery ballot),
// with executed instances that are not stable (node 3 down), and after
// everything became stable.
func checkpointSeeds(t testing.TB) [][]byte {
	c := newCluster(t, 3, 1, 21)
	c.crash(3)
	c.submit(1, "k")
	c.submit(2, "k", "j")
	c.settle(100_000)
	c.run(3)
	c.submit(2, "j")
	c.deliver(func(e envelope) bool { return e.to == 1 && isMsg[MCollect](e) })
	c.submit(1, "k")
	c.drop(all)
	r := c.rep(1)
	r.handleRec(2, MRec{Dot: Dot{Node: 2, Seq: 2}, Ballot: ballot.Ballot{Round: 1, Node: 2}})
	c.drop(all)
	a := r.Checkpoint()
	c.restart(3)
	c.settle(400_000)
	c.run(5)
	return [][]byte{a, r.Checkpoint()}
}

// FuzzRecoverCheckpoint checks that an arbitrary checkpoint never makes a
// restart panic: it is loaded or rejected with an error. A loaded one
// runs, and its own checkpoint loads again and checkpoints identically.
func FuzzRecoverCheckpoint(f *testing.F) {
	seeds := checkpointSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	fuzzseed.Check(f, "FuzzRecoverCheckpoint", seeds)
	recs := recordSeeds()
	f.Fuzz(func(t *testing.T, ck []byte) {
		cfg := protocols.Config{Self: 1, Peers: []protocols.NodeID{1, 2, 3}, F: 1,
			Env: &nopEnv{rnd: rand.New(rand.NewPCG(1, 2))}, Checkpoint: ck, Recovered: recs}
		r, err := New(cfg)
		if err != nil {
			return
		}
		r.Tick()
		r.Step(2, MExecuted{Prefix: []uint64{3, 1 << 62, 2}})
		r.Tick()
		a := r.Checkpoint()
		cfg.Checkpoint, cfg.Recovered = a, nil
		r2, err := New(cfg)
		require.NoError(t, err)
		require.Equal(t, a, r2.Checkpoint())
	})
}

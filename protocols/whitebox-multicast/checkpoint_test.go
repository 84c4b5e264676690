package wbcast

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
	"github.com/blossom-dso/blossom/protocols"
)

// cluster is a tiny synchronous driver for checkpoint tests: two groups of
// three (testConfig), every record durable at once, messages delivered in
// a seeded random order between ticks.
type cluster struct {
	t     *testing.T
	rnd   *rand.Rand
	nodes map[protocols.NodeID]*tnode
	queue []envelope
	ckpts bool // take a checkpoint at every node after every tick
}

type envelope struct {
	from, to protocols.NodeID
	m        protocols.Message
}

type tnode struct {
	c     *cluster
	id    protocols.NodeID
	r     *Replica
	log   [][]byte // every record ever persisted
	execs []protocols.CommandID
	// the last checkpoint and the log length when it was taken
	ckpt         []byte
	ckptAt       int
	ckptReplayed uint64
}

func (n *tnode) Send(to protocols.NodeID, m protocols.Message) {
	n.c.queue = append(n.c.queue, envelope{n.id, to, m})
}
func (n *tnode) Execute(c protocols.Command) { n.execs = append(n.execs, c.ID) }
func (n *tnode) Persist(rec []byte)          { n.log = append(n.log, rec) }
func (n *tnode) Rand() *rand.Rand            { return n.c.rnd }

func newCluster(t *testing.T, seed uint64) *cluster {
	c := &cluster{t: t, rnd: rand.New(rand.NewPCG(seed, 1)), nodes: map[protocols.NodeID]*tnode{}}
	for id := protocols.NodeID(1); id <= 6; id++ {
		n := &tnode{c: c, id: id}
		c.nodes[id] = n
		n.r = c.start(n, nil, nil)
	}
	return c
}

func (c *cluster) start(n *tnode, ckpt []byte, recs [][]byte) *Replica {
	cfg := testConfig(recs)
	cfg.Self, cfg.Env, cfg.Checkpoint = n.id, n, ckpt
	r, err := New(cfg)
	require.NoError(c.t, err)
	return r
}

// restart replaces node id by a process restarted from its last checkpoint
// and the records after it, and returns a reference process restarted from
// its whole log (on a throwaway Env).
func (c *cluster) restart(id protocols.NodeID) (compacted, full *Replica, ref *tnode) {
	n := c.nodes[id]
	ref = &tnode{c: &cluster{t: c.t, rnd: c.rnd}, id: id}
	full = c.start(ref, nil, slices.Clone(n.log))
	n.r = c.start(n, n.ckpt, slices.Clone(n.log[n.ckptAt:]))
	return n.r, full, ref
}

func (c *cluster) ids() []protocols.NodeID {
	return []protocols.NodeID{1, 2, 3, 4, 5, 6}
}

// round ticks every node, takes checkpoints if asked, then delivers every
// message (and those they cause) in random order.
func (c *cluster) round() {
	for _, id := range c.ids() {
		c.nodes[id].r.Tick()
	}
	for len(c.queue) > 0 {
		i := c.rnd.IntN(len(c.queue))
		e := c.queue[i]
		c.queue[i] = c.queue[len(c.queue)-1]
		c.queue = c.queue[:len(c.queue)-1]
		c.nodes[e.to].r.Step(e.from, e.m)
	}
	if c.ckpts {
		for _, id := range c.ids() {
			n := c.nodes[id]
			n.ckpt, n.ckptAt, n.ckptReplayed = n.r.Checkpoint(), len(n.log), n.r.replayed
		}
	}
}

func (c *cluster) submit(client uint64, seq uint64, keys ...string) protocols.Command {
	cmd := protocols.Command{ID: protocols.CommandID{Client: client, Seq: seq}, Keys: keys, Payload: []byte("x")}
	at := protocols.NodeID(1 + c.rnd.IntN(3))
	if keys[0][1] == '2' {
		at += 3
	}
	c.nodes[at].r.Submit(cmd)
	return cmd
}

// sequence returns the delivery sequence node id holds, by position.
func (c *cluster) sequence(id protocols.NodeID) map[uint64]protocols.CommandID {
	r := c.nodes[id].r
	out := map[uint64]protocols.CommandID{}
	for p := r.base + 1; p <= r.count(); p++ {
		out[p] = r.at(p).Cmd.ID
	}
	return out
}

// checkAgreement checks that the members of each group agree on every
// position they both hold, and that each command of cmds was executed
// by every member of its destination groups in its current incarnation
// or before its last restart (execs accumulates across incarnations).
func (c *cluster) checkAgreement(cmds []protocols.Command) {
	for _, g := range [][]protocols.NodeID{{1, 2, 3}, {4, 5, 6}} {
		for _, a := range g {
			for _, b := range g {
				sa, sb := c.sequence(a), c.sequence(b)
				for p, id := range sa {
					if jd, ok := sb[p]; ok {
						require.Equal(c.t, id, jd, "nodes %d and %d disagree on position %d", a, b, p)
					}
				}
			}
		}
	}
	for _, cmd := range cmds {
		for _, id := range c.ids() {
			n := c.nodes[id]
			if !slices.Contains(n.r.dests(cmd), n.r.group) {
				continue
			}
			require.Contains(c.t, n.execs, cmd.ID, "node %d never executed %v", id, cmd.ID)
		}
	}
}

func keysFor(i int) []string {
	switch i % 3 {
	case 0:
		return []string{"g0/a"}
	case 1:
		return []string{"g2/b"}
	}
	return []string{"g0/c", "g2/c"}
}

// TestCheckpointRestart runs two groups with checkpoints after every round,
// restarts a follower and the leader of group 0 from their last checkpoint
// plus the records after it, and checks that (1) the restarted process
// holds what a restart from its whole log holds, except what the
// checkpoint pruned, (2) it executes exactly the deliveries after its
// checkpoint's, (3) the groups go on agreeing and delivering, and (4) the
// pruned state is bounded: at quiescence nothing delivered stays in done
// and the delivery sequence is cut at what every member holds.
func TestCheckpointRestart(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { checkpointRestart(t, seed) })
	}
}

func checkpointRestart(t *testing.T, seed uint64) {
	c := newCluster(t, seed)
	c.ckpts = true
	var cmds []protocols.Command
	for i := range 30 {
		cmds = append(cmds, c.submit(uint64(i%4+1), uint64(i+1), keysFor(i)...))
		if i%3 == 0 {
			c.round()
		}
	}
	for range 60 {
		c.round()
	}
	c.checkAgreement(cmds)

	for _, id := range []protocols.NodeID{2, 1} {
		before := c.nodes[id].r
		require.Positive(t, before.base, "node %d pruned no delivery", id)
		require.NotEmpty(t, before.tomb, "node %d forgot no delivered message", id)
		// Some more traffic after the checkpoint, so that the restart
		// replays records too.
		c.ckpts = false
		for i := range 6 {
			cmds = append(cmds, c.submit(9, uint64(100*int(id)+i), keysFor(i)...))
		}
		c.round()
		c.round()
		n := c.nodes[id]
		ckptReplayed := n.ckptReplayed
		require.Less(t, n.ckptAt, len(n.log), "no record after the checkpoint")

		got, full, ref := c.restart(id)
		require.Equal(t, full.cballot, got.cballot)
		require.Equal(t, full.aballot, got.aballot)
		require.Equal(t, full.count(), got.count())
		require.Equal(t, full.lastGTS, got.lastGTS)
		require.Equal(t, full.lastID, got.lastID)
		require.GreaterOrEqual(t, got.clock, full.clock)
		require.Equal(t, full.mustCampaign, got.mustCampaign)
		require.Equal(t, full.status, got.status)
		require.Equal(t, full.delivered[got.base:], got.delivered)
		for mid := range full.done {
			require.True(t, got.finished(mid), "restart forgot delivery of %v", mid)
		}
		for mid, m := range full.msgs {
			if m.phase < phAccepted {
				continue
			}
			g, ok := got.msgs[mid]
			require.True(t, ok, "restart lost accepted %v", mid)
			require.Equal(t, m.have, g.have)
			require.Equal(t, m.lts, g.lts)
			require.Equal(t, m.bals, g.bals)
		}
		// The first input replays: the compacted restart executes only
		// the deliveries after its checkpoint, the full one all of them.
		execs := len(n.execs)
		got.Tick()
		full.Tick()
		require.Len(t, ref.execs, int(full.count()))
		require.Equal(t, ref.execs[ckptReplayed:], n.execs[execs:])

		c.ckpts = true
		for i := range 12 {
			cmds = append(cmds, c.submit(10+uint64(id), uint64(i+1), keysFor(i)...))
			c.round()
		}
		for range 60 {
			c.round()
		}
		c.checkAgreement(cmds)
	}

	// Quiescent: every member announced everything, so a checkpoint keeps
	// no delivered message and no delivery.
	for range 3 * 4 * 10 {
		c.round()
	}
	for _, id := range c.ids() {
		r := c.nodes[id].r
		require.Empty(t, r.done, "node %d keeps delivered messages at quiescence", id)
		require.Empty(t, r.delivered, "node %d keeps deliveries at quiescence", id)
		require.Equal(t, r.count(), r.base)
		for _, m := range r.msgs {
			require.Failf(t, "pending message at quiescence", "node %d: %v", id, m.cmd.ID)
		}
	}
}

// sampleCheckpoints are checkpoints of a process with pending, delivered
// and forgotten messages, and of a fresh one.
func sampleCheckpoints(t testing.TB) [][]byte {
	cfg := testConfig(recordSamples())
	r, err := New(cfg)
	require.NoError(t, err)
	fresh, err := New(testConfig(nil))
	require.NoError(t, err)
	out := [][]byte{r.Checkpoint(), fresh.Checkpoint()}
	// Once executed, and everyone announced the delivery, it is
	// forgotten (a checkpoint never drops a delivery not executed yet:
	// sample 0 was taken before the replay).
	r.replay()
	d := r.delivered[0]
	for _, p := range []protocols.NodeID{2, 3, 4, 5} {
		r.prog[p] = Progress{Count: 1, GTS: d.GTS, ID: d.Cmd.ID}
	}
	out = append(out, r.Checkpoint())
	return out
}

func TestCheckpointRoundTrip(t *testing.T) {
	for i, ck := range sampleCheckpoints(t) {
		cfg := testConfig(nil)
		cfg.Checkpoint = ck
		r, err := New(cfg)
		require.NoError(t, err, "sample %d", i)
		require.Equal(t, ck, r.Checkpoint(), "sample %d does not re-encode to itself", i)
	}
	cks := sampleCheckpoints(t)
	cfg := testConfig(nil)
	cfg.Checkpoint = cks[2]
	r, err := New(cfg)
	require.NoError(t, err)
	require.Equal(t, uint64(1), r.base)
	require.Empty(t, r.delivered)
	require.Empty(t, r.done)
	require.Len(t, r.tomb, 1)
	require.Equal(t, uint64(1), r.replayed, "a delivery the checkpoint covers is executed again")
}

// TestCheckpointMalformed checks that every truncation and a few
// corruptions of valid checkpoints are errors.
func TestCheckpointMalformed(t *testing.T) {
	for i, ck := range sampleCheckpoints(t) {
		for n := range len(ck) {
			cfg := testConfig(nil)
			cfg.Checkpoint = ck[:n]
			_, err := New(cfg)
			require.Error(t, err, "sample %d cut at %d", i, n)
		}
		cfg := testConfig(nil)
		cfg.Checkpoint = append(slices.Clone(ck), 0)
		_, err := New(cfg)
		require.Error(t, err, "sample %d with a trailing byte", i)
	}
	// An executed count beyond the deliveries.
	cfg := testConfig(nil)
	fresh, err := New(cfg)
	require.NoError(t, err)
	fresh.replayed = 3
	cfg.Checkpoint = fresh.Checkpoint()
	_, err = New(cfg)
	require.ErrorContains(t, err, "executed")
}

// FuzzCheckpoint checks that an arbitrary checkpoint, followed by the
// sample records, never makes a restart panic.
func FuzzCheckpoint(f *testing.F) {
	seeds := sampleCheckpoints(f)
	for _, s := range seeds {
		f.Add(s)
	}
	fuzzseed.Check(f, "FuzzCheckpoint", seeds)
	f.Fuzz(func(t *testing.T, ck []byte) {
		cfg := testConfig(recordSamples())
		cfg.Checkpoint = ck
		r, err := New(cfg)
		if err != nil {
			return
		}
		r.Tick()
		_ = r.Checkpoint()
	})
}

package paxos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/idset"
)

// A small deterministic cluster for scripted runs: a FIFO network that may
// drop messages, and replicas whose records and executions are kept.

type tMsg struct {
	from, to protocols.NodeID
	m        protocols.Message
}

type tNode struct {
	id    protocols.NodeID
	net   *tNet
	r     *Replica
	recs  [][]byte
	execs []protocols.CommandID // this incarnation
	rng   *rand.Rand
	down  bool

	// state transfer (tNet.transfer, statetransfer_test.go)
	ck, ckState []byte // the last checkpoint and the state at it
	installs    int
	installed   bool // a state was installed: checkpoint after the input
}

func (n *tNode) Send(to protocols.NodeID, m protocols.Message) {
	n.net.q = append(n.net.q, tMsg{from: n.id, to: to, m: m})
}
func (n *tNode) Execute(c protocols.Command) { n.execs = append(n.execs, c.ID) }
func (n *tNode) Persist(rec []byte)          { n.recs = append(n.recs, rec) }
func (n *tNode) Rand() *rand.Rand            { return n.rng }

type tNet struct {
	t     *testing.T
	peers []protocols.NodeID
	nodes map[protocols.NodeID]*tNode
	q     []tMsg
	rng   *rand.Rand
	opts  Options
	seq   uint64
	drop  float64
	incs  uint64
	// transfer gives the nodes protocols.StateTransfer (stEnv).
	transfer bool
}

func newTNet(t *testing.T, seed uint64, n int, opts Options) *tNet {
	nt := &tNet{t: t, nodes: map[protocols.NodeID]*tNode{}, rng: rand.New(rand.NewPCG(seed, 1)), opts: opts, drop: 0.05}
	for i := 1; i <= n; i++ {
		nt.peers = append(nt.peers, protocols.NodeID(i))
	}
	for _, id := range nt.peers {
		nd := &tNode{id: id, net: nt}
		nt.nodes[id] = nd
		nd.r = nt.start(nd, nil, nil)
	}
	return nt
}

// start builds a replica of nd from a checkpoint and records.
func (nt *tNet) start(nd *tNode, ck []byte, recs [][]byte) *Replica {
	nt.t.Helper()
	r, err := nt.build(nd, ck, recs)
	require.NoError(nt.t, err)
	return r
}

func (nt *tNet) build(nd *tNode, ck []byte, recs [][]byte) (*Replica, error) {
	nt.incs++
	nd.rng = rand.New(rand.NewPCG(uint64(nd.id), nt.incs))
	var env protocols.Env = nd
	if nt.transfer {
		env = stEnv{nd}
	}
	return NewWithOptions(protocols.Config{
		Self: nd.id, Peers: nt.peers, F: (len(nt.peers) - 1) / 2, SuspectTicks: 10,
		Checkpoint: ck, Recovered: recs, Env: env,
	}, nt.opts)
}

// step runs one scripted input: a few deliveries, a tick of every node, or
// a client command at a random node (only when submit is set).
func (nt *tNet) step(submit bool) {
	switch k := nt.rng.IntN(10); {
	case k < 6:
		for range 1 + nt.rng.IntN(6) {
			nt.deliver()
		}
	case k < 8 || !submit:
		for _, id := range nt.peers {
			if nd := nt.nodes[id]; !nd.down {
				nd.r.Tick()
			}
		}
	default:
		nd := nt.nodes[nt.peers[nt.rng.IntN(len(nt.peers))]]
		nt.seq++
		c := protocols.Command{ID: protocols.CommandID{Client: uint64(nd.id), Seq: nt.seq}, Keys: []string{"k"}}
		if !nd.down {
			nd.r.Submit(c)
		}
	}
}

func (nt *tNet) deliver() {
	if len(nt.q) == 0 {
		return
	}
	m := nt.q[0]
	nt.q = nt.q[1:]
	if nt.drop > 0 && nt.rng.Float64() < nt.drop {
		return
	}
	if nd := nt.nodes[m.to]; !nd.down {
		nd.r.Step(m.from, m.m)
		if nd.installed {
			checkpointNode(nd)
		}
	}
}

// quiesce runs without drops or submissions until every message is
// delivered and every live node executed the same number of slots, or
// fails after limit rounds.
func (nt *tNet) quiesce(limit int) {
	nt.t.Helper()
	drop := nt.drop
	nt.drop = 0
	defer func() { nt.drop = drop }()
	for range limit {
		for len(nt.q) > 0 {
			nt.deliver()
		}
		for _, id := range nt.peers {
			if nd := nt.nodes[id]; !nd.down {
				nd.r.Tick()
			}
		}
		if nt.settled() {
			return
		}
	}
	var st []string
	for _, id := range nt.peers {
		nd := nt.nodes[id]
		st = append(st, fmt.Sprintf("n%d: role %d executed %d base %d", id, nd.r.role, nd.r.executed, nd.r.base))
	}
	nt.t.Fatalf("cluster did not settle: %v", st)
}

func (nt *tNet) settled() bool {
	var ex []uint64
	for _, id := range nt.peers {
		nd := nt.nodes[id]
		if nd.down {
			continue
		}
		if len(nd.r.submitted) > 0 || nd.r.role == candidate {
			return false
		}
		ex = append(ex, nd.r.executed)
	}
	return len(ex) > 0 && slices.Min(ex) == slices.Max(ex)
}

// chosen returns the chosen value of every slot some live node knows,
// failing on two nodes that know different values for one slot.
func (nt *tNet) chosen() map[uint64][]protocols.Command {
	nt.t.Helper()
	vals := map[uint64][]protocols.Command{}
	for _, id := range nt.peers {
		r := nt.nodes[id].r
		for s := r.base + 1; s <= r.lastSlot(); s++ {
			if e := r.at(s); e.chosen {
				if v, ok := vals[s]; ok {
					require.Equal(nt.t, cmdIDs(v), cmdIDs(e.cmds), "slot %d chosen twice differently", s)
				}
				vals[s] = e.cmds
			}
		}
	}
	return vals
}

func cmdIDs(cs []protocols.Command) []protocols.CommandID {
	ids := []protocols.CommandID{}
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

// firstOccurrences keeps the first occurrence of each id: the effect of the
// runtime's exactly-once sessions on a sequence of executions.
func firstOccurrences(ids []protocols.CommandID) []protocols.CommandID {
	seen := map[protocols.CommandID]bool{}
	var out []protocols.CommandID
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// requireSameAcceptor checks that b holds the acceptor and learner state of
// a at every slot above a's compaction point.
func requireSameAcceptor(t *testing.T, a, b *Replica, msg string) {
	t.Helper()
	require.Equal(t, a.promised, b.promised, "%s: promised", msg)
	require.Equal(t, a.base, b.base, "%s: base", msg)
	require.Equal(t, a.executed, b.executed, "%s: executed", msg)
	require.Equal(t, maps2set(&a.done), maps2set(&b.done), "%s: done", msg)
	for s := a.base + 1; s <= max(a.lastSlot(), b.lastSlot()); s++ {
		ea, eb := a.at(s), b.at(s)
		if ea == nil {
			ea = &entry{}
		}
		if eb == nil {
			eb = &entry{}
		}
		require.Equal(t, ea.bal, eb.bal, "%s: slot %d ballot", msg, s)
		require.Equal(t, ea.chosen, eb.chosen, "%s: slot %d chosen", msg, s)
		require.Equal(t, cmdIDs(ea.cmds), cmdIDs(eb.cmds), "%s: slot %d value", msg, s)
	}
}

// ckPoint is a checkpoint taken during a scripted run.
type ckPoint struct {
	rec      []byte
	recsAt   int // records persisted before it
	execsAt  int // executions of the incarnation before it
	executed uint64
}

func takeCheckpoint(t *testing.T, nt *tNet, nd *tNode) ckPoint {
	t.Helper()
	ck := ckPoint{rec: nd.r.Checkpoint(), recsAt: len(nd.recs), execsAt: len(nd.execs), executed: nd.r.executed}
	// The record alone restores exactly the state the replica kept.
	probe := &tNode{id: nd.id, net: nt}
	back := nt.start(probe, slices.Clone(ck.rec), nil)
	requireSameAcceptor(t, nd.r, back, "checkpoint alone")
	require.Empty(t, probe.recs, "a restart persists nothing")
	require.Empty(t, probe.execs, "a restart executes nothing")
	require.LessOrEqual(t, nd.r.executed-nd.r.base, nd.r.retain, "retention window exceeded")
	return ck
}

// TestCheckpointAtEveryPoint checkpoints one replica after every input of a
// scripted run (and once more a little later), runs on, crashes it and
// restarts it from each checkpoint with the records persisted after it. The
// restart must hold every vote and promise a restart from all records
// holds, must not execute again a slot the checkpoint covers, and after the
// cluster settles its executions must complete exactly those of the
// replicas that never crashed.
func TestCheckpointAtEveryPoint(t *testing.T) {
	const steps, later = 160, 23
	for _, retain := range []int{-1, 3, DefaultRetain} {
		for _, target := range []protocols.NodeID{1, 2, 3} {
			for p := 0; p <= steps; p++ {
				name := fmt.Sprintf("retain=%d/node=%d/point=%d", retain, target, p)
				checkpointRun(t, name, Options{Retain: retain}, target, p, p+later, steps+later)
			}
		}
	}
}

func checkpointRun(t *testing.T, name string, opts Options, target protocols.NodeID, p1, p2, steps int) {
	t.Helper()
	nt := newTNet(t, 7, 3, opts)
	nd := nt.nodes[target]
	var cks []ckPoint
	for i := 0; i < steps; i++ {
		if i == p1 || i == p2 {
			cks = append(cks, takeCheckpoint(t, nt, nd))
		}
		nt.step(i >= 20)
	}
	preExecs := slices.Clone(nd.execs)
	// Crash the target; the others settle without it.
	nd.down = true
	full := nt.start(&tNode{id: target, net: nt}, nil, slices.Clone(nd.recs))
	for i, ck := range cks {
		msg := fmt.Sprintf("%s: checkpoint %d", name, i)
		probe := &tNode{id: target, net: nt}
		r := nt.start(probe, ck.rec, slices.Clone(nd.recs[ck.recsAt:]))
		require.Equal(t, ck.executed, r.executed, "%s: executed prefix", msg)
		require.Equal(t, full.promised, r.promised, "%s: promise", msg)
		require.Zero(t, full.executed, "%s: a restart from records executes nothing", msg)
		truth := nt.chosen()
		for s := r.base + 1; s <= max(r.lastSlot(), full.lastSlot()); s++ {
			ef, ec := full.at(s), r.at(s)
			if ef == nil {
				ef = &entry{}
			}
			if ec == nil {
				ec = &entry{}
			}
			require.Equal(t, ef.bal, ec.bal, "%s: slot %d vote ballot", msg, s)
			if ec.chosen {
				// A value learned as chosen stands for the vote.
				v, ok := truth[s]
				require.True(t, ok || s <= ck.executed, "%s: slot %d chosen at the restart only", msg, s)
				if ok {
					require.Equal(t, cmdIDs(v), cmdIDs(ec.cmds), "%s: slot %d chosen value", msg, s)
				}
			} else {
				require.Equal(t, cmdIDs(ef.cmds), cmdIDs(ec.cmds), "%s: slot %d vote value", msg, s)
			}
		}
		if r.base > 0 {
			// A compacted slot cannot be reported: no promise below base.
			probe.recs = nil
			r.Step(2, Prepare{Ballot: ballot.Ballot{Round: 1 << 40, Node: 2}, From: r.base})
			require.Empty(t, probe.recs, "%s: promised while compacted", msg)
		}
	}
	// Restart from the last checkpoint (or all records) and settle.
	ck := ckPoint{}
	if len(cks) > 0 {
		ck = cks[len(cks)-1]
	}
	nt.quiesce(400)
	nd.down = false
	nd.execs = nil
	nd.r = nt.start(nd, ck.rec, slices.Clone(nd.recs[ck.recsAt:]))
	doneAtRestart := maps2set(&nd.r.done)
	restartExecuted := nd.r.executed
	nt.quiesce(400)
	truth := nt.chosen()
	// The executions of the new incarnation are exactly the commands of
	// the slots above the checkpoint, each at most once.
	var want []protocols.CommandID
	for s := restartExecuted + 1; s <= nd.r.executed; s++ {
		v, ok := truth[s]
		require.True(t, ok, "%s: slot %d executed but unknown", name, s)
		for _, c := range v {
			if !doneAtRestart[c.ID] {
				doneAtRestart[c.ID] = true
				want = append(want, c.ID)
			}
		}
	}
	require.Equal(t, want, nd.execs, "%s: executions after the restart", name)
	// With the state machine of the checkpoint, the replica holds what the
	// replicas that never crashed hold.
	state := firstOccurrences(append(slices.Clone(preExecs[:ck.execsAt]), nd.execs...))
	for _, id := range nt.peers {
		if id == target {
			continue
		}
		require.Equal(t, firstOccurrences(nt.nodes[id].execs), state, "%s: state differs from node %d", name, id)
	}
}

func maps2set(s *idset.Set) map[protocols.CommandID]bool {
	out := map[protocols.CommandID]bool{}
	for id := range s.All() {
		out[id] = true
	}
	return out
}

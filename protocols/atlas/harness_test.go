package atlas

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// A small deterministic harness: the test decides which message is
// delivered when, which replica ticks, crashes and restarts. Every message
// goes through the Codec. Persist is durable at once.

type envelope struct {
	from, to protocols.NodeID
	m        protocols.Message
}

type tenv struct {
	c       *cluster
	id      protocols.NodeID
	rnd     *rand.Rand
	records [][]byte            // durable records after ckpt
	ckpt    []byte              // last checkpoint, nil if none
	ckptSM  []protocols.Command // the state machine at ckpt
	base    []protocols.Command // the state machine at the start of this incarnation
	execs   []protocols.Command // this incarnation
	fast    int
	slow    int
}

func (e *tenv) Send(to protocols.NodeID, m protocols.Message) {
	b, err := Codec{}.Marshal(nil, m)
	require.NoError(e.c.t, err)
	m2, err := Codec{}.Unmarshal(b)
	require.NoError(e.c.t, err)
	e.c.queue = append(e.c.queue, envelope{from: e.id, to: to, m: m2})
}
func (e *tenv) Execute(c protocols.Command) { e.execs = append(e.execs, c) }
func (e *tenv) Persist(rec []byte) {
	e.records = append(e.records, slices.Clone(rec))
	// Remember every commit any incarnation made durable, for the
	// agreement check.
	s, err := decodeRecord(rec)
	require.NoError(e.c.t, err)
	e.c.noteCommit(e.id, &s)
}

// noteCommit checks a durable commit against every other one of its dot.
func (c *cluster) noteCommit(id protocols.NodeID, in *instance) {
	if in.phase != phCommit {
		return
	}
	v := commitVal{nop: in.anop, deps: fmt.Sprint(in.adeps)}
	if !in.anop {
		v.id = in.cmd.ID
	}
	if old, ok := c.commits[in.dot]; ok {
		require.Equal(c.t, old, v, "dot %v committed differently at %d", in.dot, id)
	}
	c.commits[in.dot] = v
}

type commitVal struct {
	nop  bool
	id   protocols.CommandID
	deps string
}

func (e *tenv) Rand() *rand.Rand { return e.rnd }
func (e *tenv) ReportPath(fast bool) {
	if fast {
		e.fast++
	} else {
		e.slow++
	}
}

type cluster struct {
	t     testing.TB
	n, f  int
	peers []protocols.NodeID
	reps  []*Replica // index i is node i+1; nil when down
	envs  []*tenv
	// history of every incarnation's executions, for the order check
	hist  [][]protocols.Command
	queue []envelope
	// commits: every durable commit, by dot
	commits map[Dot]commitVal
	rnd     *rand.Rand
	seq     uint64
}

func newCluster(t testing.TB, n, f int, seed uint64) *cluster {
	c := &cluster{t: t, n: n, f: f, rnd: rand.New(rand.NewPCG(seed, 7)), commits: map[Dot]commitVal{}}
	for i := 1; i <= n; i++ {
		c.peers = append(c.peers, protocols.NodeID(i))
	}
	c.reps = make([]*Replica, n)
	c.envs = make([]*tenv, n)
	for i := range n {
		c.start(i, nil, nil, nil)
	}
	return c
}

// start starts node Peers[i] from a checkpoint (nil: none), the state
// machine at that checkpoint, and the records persisted after it.
func (c *cluster) start(i int, ckpt []byte, sm []protocols.Command, recs [][]byte) {
	e := &tenv{c: c, id: c.peers[i], rnd: rand.New(rand.NewPCG(uint64(i), c.rnd.Uint64())), records: recs}
	if ckpt != nil {
		e.ckpt, e.ckptSM, e.base = ckpt, sm, slices.Clone(sm)
	}
	cfg := protocols.Config{Self: c.peers[i], Peers: c.peers, F: c.f, SuspectTicks: 10, Env: e,
		Checkpoint: ckpt, Recovered: slices.Clone(recs)}
	r, err := New(cfg)
	require.NoError(c.t, err)
	if c.envs[i] != nil {
		e.fast, e.slow = c.envs[i].fast, c.envs[i].slow
	}
	c.reps[i], c.envs[i] = r, e
}

// checkpoint takes a checkpoint of node id, durable at once: its records
// are dropped, and its state machine is snapshotted. Every commit the
// checkpoint holds is checked against the others, and the checkpoint must
// load.
func (c *cluster) checkpoint(id protocols.NodeID) {
	i := int(id - 1)
	e := c.envs[i]
	require.True(c.t, slices.Equal(sortedDots(c.reps[i].inst), c.reps[i].instDots()), "instDots out of dot order")
	ck := c.reps[i].Checkpoint()
	e.ckpt, e.records = ck, nil
	e.ckptSM = append(slices.Clone(e.base), e.execs...)
	r, err := New(protocols.Config{Self: id, Peers: c.peers, F: c.f, Checkpoint: ck,
		Env: &tenv{c: c, id: id, rnd: rand.New(rand.NewPCG(0, 0))}})
	require.NoError(c.t, err)
	for _, d := range sortedDots(r.inst) {
		c.noteCommit(id, r.inst[d])
	}
	require.Equal(c.t, ck, r.Checkpoint(), "a restored checkpoint checkpoints differently")
}

func (c *cluster) rep(id protocols.NodeID) *Replica { return c.reps[id-1] }

// crash takes node id down, keeping its records.
func (c *cluster) crash(id protocols.NodeID) {
	i := int(id - 1)
	c.hist = append(c.hist, c.envs[i].sm())
	c.envs[i].execs = nil
	c.reps[i] = nil
}

// sm is the state machine's history: what the incarnation started from
// (its checkpoint's snapshot) and what it executed.
func (e *tenv) sm() []protocols.Command { return append(slices.Clone(e.base), e.execs...) }

// restart starts node id again from its checkpoint and records.
func (c *cluster) restart(id protocols.NodeID) {
	i := int(id - 1)
	e := c.envs[i]
	c.start(i, e.ckpt, e.ckptSM, e.records)
}

func (c *cluster) submit(id protocols.NodeID, keys ...string) protocols.Command {
	c.seq++
	cmd := protocols.Command{ID: protocols.CommandID{Client: uint64(id), Seq: c.seq}, Keys: keys, Payload: []byte{byte(c.seq)}}
	c.rep(id).Submit(cmd)
	return cmd
}

// deliver delivers (in order) and removes the queued messages that match.
func (c *cluster) deliver(match func(envelope) bool) int {
	n := 0
	for i := 0; i < len(c.queue); {
		e := c.queue[i]
		if !match(e) {
			i++
			continue
		}
		c.queue = slices.Delete(c.queue, i, i+1)
		if r := c.rep(e.to); r != nil {
			r.Step(e.from, e.m)
		}
		n++
	}
	return n
}

// drop removes the queued messages that match.
func (c *cluster) drop(match func(envelope) bool) {
	c.queue = slices.DeleteFunc(c.queue, match)
}

// step delivers one random queued message; lossy drops it with that
// probability instead.
func (c *cluster) step(lossy float64) bool {
	if len(c.queue) == 0 {
		return false
	}
	i := c.rnd.IntN(len(c.queue))
	e := c.queue[i]
	c.queue = slices.Delete(c.queue, i, i+1)
	if c.rnd.Float64() < lossy && e.from != e.to {
		return true // self-sends are not lost (as in simnet)
	}
	if r := c.rep(e.to); r != nil {
		r.Step(e.from, e.m)
	}
	return true
}

func (c *cluster) tickAll() {
	for _, r := range c.reps {
		if r != nil {
			r.Tick()
		}
	}
}

// settle delivers everything in random order, ticking every few
// deliveries, until the queue is empty and ticks bring nothing new, or
// the budget runs out.
func (c *cluster) settle(budget int) {
	last := 0
	for i := 0; i < budget; i++ {
		if len(c.queue) == 0 {
			c.tickAll()
			if len(c.queue) == 0 || c.quiet() {
				// only periodic executed-frontier traffic
				c.drainN(len(c.queue))
				if c.quiet() {
					return
				}
			}
			continue
		}
		c.step(0)
		// Tick about once per round of the queue, so a message's delay
		// stays well below the suspicion timeout.
		if i-last >= 20+2*len(c.queue) {
			last = i
			c.tickAll()
		}
	}
}

func (c *cluster) drainN(k int) {
	for range k {
		c.step(0)
	}
}

// quiet reports whether every live replica has nothing pending.
func (c *cluster) quiet() bool {
	for _, r := range c.reps {
		if r != nil && (len(r.pending) > 0 || r.graph.Pending() > 0) {
			return false
		}
	}
	return true
}

func isMsg[T any](e envelope) bool { _, ok := e.m.(T); return ok }

// checkAgreement is done at every Persist (tenv.Persist); kept as a
// marker of where the tests rely on it.
func (c *cluster) checkAgreement() {}

// committedVal returns the durable commit of d, failing if there is none.
func (c *cluster) committedVal(d Dot) commitVal {
	v, ok := c.commits[d]
	require.True(c.t, ok, "dot %v never committed", d)
	return v
}

// checkOrder fails if two conflicting commands executed in different
// orders in two incarnations' state machines, or one executed twice in one
// (a state machine restored from a checkpoint counts what it holds).
func (c *cluster) checkOrder() {
	all := slices.Clone(c.hist)
	for _, e := range c.envs {
		all = append(all, e.sm())
	}
	before := map[[2]protocols.CommandID]bool{}
	for _, ex := range all {
		seen := map[protocols.CommandID]bool{}
		for i, a := range ex {
			require.False(c.t, seen[a.ID], "%v executed twice", a.ID)
			seen[a.ID] = true
			for _, b := range ex[i+1:] {
				if a.Conflicts(b) {
					require.False(c.t, before[[2]protocols.CommandID{b.ID, a.ID}], "%v and %v executed in both orders", a.ID, b.ID)
					before[[2]protocols.CommandID{a.ID, b.ID}] = true
				}
			}
		}
	}
}

// executedAt returns the ids in node id's state machine: those executed in
// this incarnation, after those of the checkpoint it started from.
func (c *cluster) executedAt(id protocols.NodeID) []protocols.CommandID {
	var out []protocols.CommandID
	for _, x := range c.envs[id-1].sm() {
		out = append(out, x.ID)
	}
	return out
}

func (c *cluster) String() string {
	return fmt.Sprintf("cluster n=%d f=%d queue=%d", c.n, c.f, len(c.queue))
}

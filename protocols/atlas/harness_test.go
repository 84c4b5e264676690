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
	records [][]byte
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
	r := &Replica{inst: map[Dot]*instance{}, rank: map[protocols.NodeID]int{}, stable: make([]uint64, e.c.n), pending: map[Dot]struct{}{}, index: map[string][]Dot{}, cfg: protocols.Config{SuspectTicks: 10}, env: &tenv{rnd: rand.New(rand.NewPCG(0, 0))}}
	for i, p := range e.c.peers {
		r.rank[p] = i
	}
	require.NoError(e.c.t, r.replay([][]byte{rec}))
	for d, in := range r.inst {
		if in.phase == phCommit {
			v := commitVal{nop: in.anop, deps: fmt.Sprint(in.adeps)}
			if !in.anop {
				v.id = in.cmd.ID
			}
			if old, ok := e.c.commits[d]; ok {
				require.Equal(e.c.t, old, v, "dot %v committed differently at %d", d, e.id)
			}
			e.c.commits[d] = v
		}
	}
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
		c.start(i, nil)
	}
	return c
}

func (c *cluster) start(i int, recs [][]byte) {
	e := &tenv{c: c, id: c.peers[i], rnd: rand.New(rand.NewPCG(uint64(i), c.rnd.Uint64())), records: recs}
	cfg := protocols.Config{Self: c.peers[i], Peers: c.peers, F: c.f, SuspectTicks: 10, Env: e, Recovered: slices.Clone(recs)}
	r, err := New(cfg)
	require.NoError(c.t, err)
	if c.envs[i] != nil {
		e.fast, e.slow = c.envs[i].fast, c.envs[i].slow
	}
	c.reps[i], c.envs[i] = r, e
}

func (c *cluster) rep(id protocols.NodeID) *Replica { return c.reps[id-1] }

// crash takes node id down, keeping its records.
func (c *cluster) crash(id protocols.NodeID) {
	i := int(id - 1)
	c.hist = append(c.hist, c.envs[i].execs)
	c.envs[i].execs = nil
	c.reps[i] = nil
}

// restart starts node id again from its records.
func (c *cluster) restart(id protocols.NodeID) {
	i := int(id - 1)
	c.start(i, c.envs[i].records)
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
// orders in two incarnations, or one executed twice in one.
func (c *cluster) checkOrder() {
	all := slices.Clone(c.hist)
	for _, e := range c.envs {
		all = append(all, e.execs)
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

// executedAt returns the ids executed by node id in this incarnation.
func (c *cluster) executedAt(id protocols.NodeID) []protocols.CommandID {
	var out []protocols.CommandID
	for _, x := range c.envs[id-1].execs {
		out = append(out, x.ID)
	}
	return out
}

func (c *cluster) String() string {
	return fmt.Sprintf("cluster n=%d f=%d queue=%d", c.n, c.f, len(c.queue))
}

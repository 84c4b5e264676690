package epaxos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// nullEnv drops everything; for tests that only build replicas.
type nullEnv struct{ rng *rand.Rand }

func newNullEnv() *nullEnv                                  { return &nullEnv{rng: rand.New(rand.NewPCG(1, 1))} }
func (e *nullEnv) Send(protocols.NodeID, protocols.Message) {}
func (e *nullEnv) Execute(protocols.Command)                {}
func (e *nullEnv) Persist([]byte)                           {}
func (e *nullEnv) Rand() *rand.Rand                         { return e.rng }

// envelope is one message in flight in the harness.
type envelope struct {
	from, to protocols.NodeID
	m        protocols.Message
}

func (e envelope) String() string {
	return fmt.Sprintf("%d->%d %T%+v", e.from, e.to, e.m, e.m)
}

// cluster is a small deterministic harness: replicas whose Env queues every
// message, and the test decides which ones are delivered, in which order,
// and which are dropped. Persist is immediately durable (records are kept
// for restarts); Durable self-sends are delivered at once by Deliver
// helpers like any other message.
type cluster struct {
	t     testing.TB
	ids   []protocols.NodeID
	reps  map[protocols.NodeID]*Replica
	envs  map[protocols.NodeID]*testEnv
	queue []envelope
	codec Codec
}

type testEnv struct {
	c        *cluster
	id       protocols.NodeID
	rng      *rand.Rand
	executed []protocols.Command
	records  [][]byte
	ck       []byte // the last checkpoint, taken when records had ckAt entries
	ckAt     int
	snap     []protocols.Command // executed when ck was taken: the state machine snapshot
	fast     int
	slow     int
}

func (e *testEnv) Send(to protocols.NodeID, m protocols.Message) {
	// Round-trip through the codec: what the harness delivers is what the
	// wire would carry.
	b, err := e.c.codec.Marshal(nil, m)
	require.NoError(e.c.t, err)
	m2, err := e.c.codec.Unmarshal(b)
	require.NoError(e.c.t, err)
	e.c.queue = append(e.c.queue, envelope{from: e.id, to: to, m: m2})
}
func (e *testEnv) Execute(c protocols.Command) { e.executed = append(e.executed, c) }
func (e *testEnv) Persist(rec []byte)          { e.records = append(e.records, rec) }
func (e *testEnv) Rand() *rand.Rand            { return e.rng }
func (e *testEnv) ReportPath(fast bool) {
	if fast {
		e.fast++
	} else {
		e.slow++
	}
}

func newCluster(t testing.TB, n, f, e int) *cluster {
	c := &cluster{t: t, reps: map[protocols.NodeID]*Replica{}, envs: map[protocols.NodeID]*testEnv{}}
	for i := 1; i <= n; i++ {
		c.ids = append(c.ids, protocols.NodeID(i))
	}
	for _, id := range c.ids {
		c.start(id, f, e, nil)
	}
	return c
}

func (c *cluster) start(id protocols.NodeID, f, e int, recs [][]byte) {
	c.startFrom(id, f, e, nil, recs)
}

// startFrom (re)starts id from checkpoint ck (nil: none) and the records
// persisted after it.
func (c *cluster) startFrom(id protocols.NodeID, f, e int, ck []byte, recs [][]byte) {
	env := &testEnv{c: c, id: id, rng: rand.New(rand.NewPCG(uint64(id), 99)), records: slices.Clone(recs), ck: ck}
	if old := c.envs[id]; ck != nil && old != nil {
		// The state machine restarts from its snapshot.
		env.snap = old.snap
		env.executed = slices.Clone(old.snap)
	}
	r, err := New(protocols.Config{Self: id, Peers: c.ids, F: f, E: e, SuspectTicks: 1000, Env: env, Checkpoint: ck, Recovered: recs})
	require.NoError(c.t, err)
	c.reps[id], c.envs[id] = r, env
}

// checkpoint takes a checkpoint at id, as the runtime does between inputs.
func (c *cluster) checkpoint(id protocols.NodeID) {
	env := c.envs[id]
	env.ck, env.ckAt = c.reps[id].Checkpoint(), len(env.records)
	env.snap = slices.Clone(env.executed)
}

// restartFromCheckpoint crashes id and restarts it from its last checkpoint
// and the records persisted after it.
func (c *cluster) restartFromCheckpoint(id protocols.NodeID, f, e int) {
	env := c.envs[id]
	c.startFrom(id, f, e, env.ck, slices.Clone(env.records[env.ckAt:]))
}

func cmd(client uint64, key string) protocols.Command {
	return protocols.Command{ID: protocols.CommandID{Client: client, Seq: 1}, Keys: []string{key}, Payload: []byte(key)}
}

// deliver delivers, in queue order, every queued message that match
// accepts, repeatedly, until none matches; messages it rejects stay queued.
func (c *cluster) deliver(match func(envelope) bool) {
	for {
		i := slices.IndexFunc(c.queue, match)
		if i < 0 {
			return
		}
		e := c.queue[i]
		c.queue = slices.Delete(c.queue, i, i+1)
		c.reps[e.to].Step(e.from, e.m)
	}
}

// drop removes the queued messages that match.
func (c *cluster) drop(match func(envelope) bool) {
	c.queue = slices.DeleteFunc(c.queue, match)
}

// stabilize delivers everything.
func (c *cluster) stabilize() { c.deliver(func(envelope) bool { return true }) }

func to(ids ...protocols.NodeID) func(envelope) bool {
	return func(e envelope) bool { return slices.Contains(ids, e.to) }
}

func and(fs ...func(envelope) bool) func(envelope) bool {
	return func(e envelope) bool {
		for _, f := range fs {
			if !f(e) {
				return false
			}
		}
		return true
	}
}

func is[M any](e envelope) bool { _, ok := e.m.(M); return ok }

func from(ids ...protocols.NodeID) func(envelope) bool {
	return func(e envelope) bool { return slices.Contains(ids, e.from) }
}

func forDot(d Dot) func(envelope) bool {
	return func(e envelope) bool { got, ok := dotOf(e.m); return ok && got == d }
}

// dotOf returns the instance a message is about.
func dotOf(m protocols.Message) (Dot, bool) {
	switch m := m.(type) {
	case PreAccept:
		return m.Dot, true
	case PreAcceptOK:
		return m.Dot, true
	case Accept:
		return m.Dot, true
	case AcceptOK:
		return m.Dot, true
	case Commit:
		return m.Dot, true
	case Recover:
		return m.Dot, true
	case RecoverOK:
		return m.Dot, true
	case Nack:
		return m.Dot, true
	case Validate:
		return m.Dot, true
	case ValidateOK:
		return m.Dot, true
	case Waiting:
		return m.Dot, true
	case Durable:
		return m.Dot, true
	}
	return Dot{}, false
}

// committed returns the committed state of d at every replica that has it.
func (c *cluster) committed(d Dot) map[protocols.NodeID]InstanceState {
	out := map[protocols.NodeID]InstanceState{}
	for _, id := range c.ids {
		if s, ok := c.reps[id].Instance(d); ok && s.Phase == Committed {
			out[id] = s
		}
	}
	return out
}

// checkInvariants checks Agreement, Visibility and abal <= bal over every
// replica (PROTOCOL-NOTES §1.7).
func (c *cluster) checkInvariants() {
	c.t.Helper()
	all := map[Dot]InstanceState{}
	for _, id := range c.ids {
		r := c.reps[id]
		require.Zero(c.t, r.Violations, "replica %d saw disagreeing commits", id)
		for _, d := range r.Dots() {
			s, _ := r.Instance(d)
			require.False(c.t, s.Bal.Less(s.Abal), "replica %d %v: abal %v > bal %v", id, d, s.Abal, s.Bal)
			if s.Phase != Committed {
				continue
			}
			if prev, ok := all[d]; ok {
				require.Equal(c.t, prev.Val, s.Val, "agreement on the value of %v (replica %d)", d, id)
				require.Equal(c.t, prev.Deps, s.Deps, "agreement on the deps of %v (replica %d)", d, id)
			}
			all[d] = s
		}
	}
	for a, sa := range all {
		for b, sb := range all {
			if !a.Less(b) || sa.Val.Nop || sb.Val.Nop || !sa.Val.Cmd.Conflicts(sb.Val.Cmd) {
				continue
			}
			require.True(c.t, hasDot(sa.Deps, b) || hasDot(sb.Deps, a), "visibility: %v and %v", a, b)
		}
	}
}

// heartbeats makes every replica send a Heartbeat (with its executed
// prefixes) and delivers everything.
func (c *cluster) heartbeats() {
	for _, id := range c.ids {
		r := c.reps[id]
		r.lastBeat = r.now - r.cfg.SuspectTicks
		r.compacting = true
		r.Tick()
	}
	c.stabilize()
}

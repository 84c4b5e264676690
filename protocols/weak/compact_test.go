package weak

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
	"github.com/blossom-dso/blossom/protocols"
)

// mergeCluster is three merge replicas driven by hand: route delivers the
// messages they sent, to the replicas that are up, until none is left.
type mergeCluster struct {
	t    *testing.T
	reps []*MergeReplica
	envs []*testEnv
	down []bool
}

func newMergeCluster(t *testing.T) *mergeCluster {
	c := &mergeCluster{t: t, down: make([]bool, 3)}
	for i := range 3 {
		c.start(i, nil, nil)
	}
	return c
}

// start (re)starts replica i from a checkpoint and the records after it.
func (c *mergeCluster) start(i int, ck []byte, recs [][]byte) {
	env := &testEnv{rand: rand.New(rand.NewPCG(uint64(i), 2))}
	r, err := NewMerge(protocols.Config{Self: protocols.NodeID(i + 1), Peers: []protocols.NodeID{1, 2, 3}, F: 1, Env: env,
		Checkpoint: ck, Recovered: recs, ReadOnly: isRead})
	require.NoError(c.t, err)
	if len(c.reps) == 3 {
		c.reps[i], c.envs[i], c.down[i] = r, env, false
		return
	}
	c.reps, c.envs = append(c.reps, r), append(c.envs, env)
}

func (c *mergeCluster) route() {
	for more := true; more; {
		more = false
		for i, e := range c.envs {
			sent, to := e.sent, e.to
			e.sent, e.to = nil, nil
			for k, m := range sent {
				if j := int(to[k]) - 1; !c.down[j] && !c.down[i] {
					c.reps[j].Step(protocols.NodeID(i+1), m)
					more = true
				}
			}
		}
	}
}

// antiEntropy runs one round of digests.
func (c *mergeCluster) antiEntropy() {
	for range aeTicks {
		for i, r := range c.reps {
			if !c.down[i] {
				r.Tick()
			}
		}
	}
	c.route()
}

// retained is the number of updates replica i keeps in memory.
func (c *mergeCluster) retained(i int) int {
	n := 0
	for _, l := range c.reps[i].log {
		n += len(l)
	}
	return n
}

// TestMergeLogStaysBounded runs 3,000 updates, a third at each replica,
// with a round of anti-entropy every 10: no replica ever keeps more than
// 64 updates in memory while each has delivered and executed every update
// once. Without compaction each would keep all 3,000.
func TestMergeLogStaysBounded(t *testing.T) {
	c := newMergeCluster(t)
	const updates = 3000
	most := 0
	for k := range updates {
		c.reps[k%3].Submit(put(uint64(k%3+1), uint64(k/3+1), "k"))
		c.route()
		if k%10 == 9 {
			c.antiEntropy()
		}
		for i := range 3 {
			most = max(most, c.retained(i))
		}
	}
	c.antiEntropy()
	t.Logf("at most %d updates kept in memory by a replica", most)
	require.LessOrEqual(t, most, 64, "the log was not compacted")
	for i := range 3 {
		require.Len(t, c.envs[i].executed, updates, "replica %d", i+1)
		seen := map[protocols.CommandID]bool{}
		for _, id := range c.envs[i].executed {
			require.False(t, seen[id], "replica %d executed %v twice", i+1, id)
			seen[id] = true
		}
		for o := range 3 {
			require.Equal(t, uint64(updates/3), c.reps[i].delivered(o))
		}
	}
}

// TestMergeRestartAfterCompaction restarts a replica from a checkpoint
// taken after compaction plus the records it persisted after it, while the
// others went on without it: it executes exactly the updates its
// checkpoint did not cover, each once, and converges with the others; a
// malformed checkpoint is an error.
func TestMergeRestartAfterCompaction(t *testing.T) {
	c := newMergeCluster(t)
	next := map[int]uint64{}
	submit := func(at int) {
		next[at]++
		c.reps[at].Submit(put(uint64(at+1), next[at], "k"))
		c.route()
	}
	for k := range 300 {
		submit(k % 3)
		if k%10 == 9 {
			c.antiEntropy()
		}
	}
	require.Less(t, c.retained(2), 300, "nothing compacted before the checkpoint")
	for k := range 6 { // not stable yet: kept in the checkpoint
		submit(k % 3)
	}
	require.Positive(t, c.retained(2))
	ck := c.reps[2].Checkpoint()
	recs := len(c.envs[2].records)
	execs := append([]protocols.CommandID(nil), c.envs[2].executed...)
	for k := range 30 { // persisted after the checkpoint
		submit(k % 3)
	}
	old := c.envs[2]
	c.down[2] = true
	for k := range 200 { // without replica 3
		submit(k % 2)
		if k%10 == 9 {
			c.antiEntropy()
		}
	}
	c.start(2, ck, old.records[recs:])
	for range 5 {
		c.antiEntropy()
	}
	all := append(execs, c.envs[2].executed...)
	require.Len(t, all, 536)
	seen := map[protocols.CommandID]bool{}
	for _, id := range all {
		require.False(t, seen[id], "executed %v twice", id)
		seen[id] = true
	}
	for o := range 3 {
		for i := range 2 {
			require.Equal(t, c.reps[i].delivered(o), c.reps[2].delivered(o), "origin %d at replica %d", o+1, i+1)
		}
	}
	for _, bad := range [][]byte{{}, ck[:len(ck)-1], append(append([]byte{}, ck...), 0)} {
		_, err := NewMerge(protocols.Config{Self: 3, Peers: []protocols.NodeID{1, 2, 3}, F: 1, Env: &testEnv{}, Checkpoint: bad, ReadOnly: isRead})
		require.Error(t, err)
	}
	_, err := New(protocols.Config{Self: 3, Peers: []protocols.NodeID{1, 2, 3}, F: 1, Env: &testEnv{}, Checkpoint: ck, ReadOnly: isRead})
	require.Error(t, err, "the last-writer-wins strategy takes no checkpoint")
}

// FuzzCheckpoint checks that an arbitrary checkpoint never makes a merge
// replica's start panic: it is taken over or rejected with an error.
func FuzzCheckpoint(f *testing.F) {
	env := &testEnv{rand: rand.New(rand.NewPCG(1, 2))}
	r, err := NewMerge(protocols.Config{Self: 1, Peers: []protocols.NodeID{1, 2, 3}, F: 1, Env: env, ReadOnly: isRead})
	require.NoError(f, err)
	empty := r.Checkpoint()
	r.Submit(put(1, 1, "k"))
	r.Step(2, Update{Origin: 2, Seq: 1, Stamp: Stamp{Time: 5, Node: 2}, Cmd: put(2, 1, "k")})
	seeds := [][]byte{empty, r.Checkpoint()}
	for _, s := range seeds {
		f.Add(s)
	}
	fuzzseed.Check(f, "FuzzCheckpoint", seeds)
	f.Fuzz(func(t *testing.T, ck []byte) {
		_, _ = NewMerge(protocols.Config{Self: 1, Peers: []protocols.NodeID{1, 2, 3}, F: 1, Env: &testEnv{}, Checkpoint: ck, ReadOnly: isRead})
	})
}

package atlas

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

func all(envelope) bool { return true }

func committed(t *testing.T, r *Replica, d Dot) *instance {
	t.Helper()
	in := r.inst[d]
	require.NotNil(t, in, "dot %v unknown at %d", d, r.self)
	require.Equal(t, phCommit, in.phase, "dot %v not committed at %d", d, r.self)
	return in
}

// TestPaperFastPathWithF1 checks the paper's claim: with f = 1 every
// command takes the fast path, whatever the conflict rate, when nothing
// fails (here with commands interleaved in random orders).
func TestPaperFastPathWithF1(t *testing.T) {
	for _, n := range []int{3, 5, 7} {
		for _, conflict := range []int{0, 10, 100} {
			t.Run(fmt.Sprintf("n=%d,conflict=%d", n, conflict), func(t *testing.T) {
				c := newCluster(t, n, 1, uint64(n*1000+conflict))
				cmds := 0
				for round := 0; round < 30; round++ {
					for id := 1; id <= n; id++ {
						key := fmt.Sprintf("private%d", id)
						if c.rnd.IntN(100) < conflict {
							key = "hot"
						}
						c.submit(protocols.NodeID(id), key)
						cmds++
					}
					for range c.rnd.IntN(3 * n * n) {
						c.step(0)
					}
				}
				c.settle(1_000_000)
				require.True(t, c.quiet())
				fast, slow := 0, 0
				for _, e := range c.envs {
					fast += e.fast
					slow += e.slow
				}
				require.Equal(t, cmds, fast)
				require.Zero(t, slow)
				for id := 1; id <= n; id++ {
					require.Len(t, c.executedAt(protocols.NodeID(id)), cmds)
				}
				c.checkAgreement()
				c.checkOrder()
			})
		}
	}
}

// TestSlowPathWithF2 checks that with f = 2 a dependency reported by fewer
// than f fast-quorum members sends the command to the slow path, which
// commits it with the union.
func TestSlowPathWithF2(t *testing.T) {
	c := newCluster(t, 5, 2, 1)
	// c2 is known only to its coordinator 2.
	c2 := c.submit(2, "k")
	c.drop(all)
	c1 := c.submit(1, "k") // fast quorum {1,2,3,4}: only 2 reports c2
	c.settle(100_000)
	require.True(t, c.quiet())
	d1 := Dot{Node: 1, Seq: 1}
	require.Equal(t, "[2.1]", c.committedVal(d1).deps)
	require.Equal(t, 1, c.envs[0].slow)
	c.checkAgreement()
	c.checkOrder()
	_ = c1
	_ = c2
}

// TestRecoveryAfterPartialCollect: the coordinator crashes after its
// MCollect reached one fast-quorum member only; the others recover the
// command with its payload and execute it.
func TestRecoveryAfterPartialCollect(t *testing.T) {
	for _, f := range []int{1, 2} {
		t.Run(fmt.Sprintf("f=%d", f), func(t *testing.T) {
			c := newCluster(t, 5, f, 2)
			cmd := c.submit(1, "k")
			c.deliver(func(e envelope) bool { return e.to == 2 && isMsg[MCollect](e) })
			c.drop(all)
			c.crash(1)
			c.settle(200_000)
			require.True(t, c.quiet())
			for id := protocols.NodeID(2); id <= 5; id++ {
				require.False(t, c.committedVal(Dot{Node: 1, Seq: 1}).nop)
				require.Equal(t, []protocols.CommandID{cmd.ID}, c.executedAt(id))
			}
			c.checkAgreement()
			// The coordinator comes back and learns the same commit.
			c.restart(1)
			c.settle(200_000)
			require.Equal(t, []protocols.CommandID{cmd.ID}, c.executedAt(1))
			c.checkAgreement()
			c.checkOrder()
		})
	}
}

// TestRecoveryOfPayloadOnlyIsNoop: the MCollect reached only a replica
// outside the fast quorum; no fast-quorum member can have vouched for the
// command, so the recovery commits a no-op.
func TestRecoveryOfPayloadOnlyIsNoop(t *testing.T) {
	c := newCluster(t, 5, 1, 3) // fast quorum of 1: {1,2,3}
	c.submit(1, "k")
	c.deliver(func(e envelope) bool { return e.to == 5 && isMsg[MCollect](e) })
	c.drop(all)
	c.crash(1)
	c.settle(200_000)
	require.True(t, c.quiet())
	for id := protocols.NodeID(2); id <= 5; id++ {
		require.True(t, c.committedVal(Dot{Node: 1, Seq: 1}).nop)
		require.Empty(t, c.executedAt(id))
	}
	c.checkAgreement()
}

// fastCommitThenCrash builds the scenario where coordinator 1 commits c1
// on the fast path with deps {c2} (c2 reported by 2 and 3, i.e. f = 2
// members), executes it, and crashes before any MCommit leaves.
func fastCommitThenCrash(t *testing.T) *cluster {
	c := newCluster(t, 5, 2, 4)
	c.submit(2, "k")
	c.deliver(func(e envelope) bool { return e.to == 3 && isMsg[MCollect](e) })
	c.drop(all)
	c.submit(1, "k")
	c.deliver(func(e envelope) bool { return isMsg[MCollect](e) && e.to <= 4 })
	c.deliver(func(e envelope) bool { return isMsg[MCollectAck](e) })
	d1 := Dot{Node: 1, Seq: 1}
	require.Equal(t, []Dot{{Node: 2, Seq: 1}}, committed(t, c.rep(1), d1).adeps)
	require.Equal(t, 1, c.envs[0].fast)
	c.drop(all)
	c.crash(1)
	return c
}

// TestRecoveryKeepsFastPathDeps: a command committed on the fast path is
// recovered with the same dependencies by a recovery quorum that misses
// the coordinator, whichever n−f replicas answer.
func TestRecoveryKeepsFastPathDeps(t *testing.T) {
	for _, silent := range []protocols.NodeID{2, 3, 4, 5} {
		t.Run(fmt.Sprintf("without-%d", silent), func(t *testing.T) {
			c := fastCommitThenCrash(t)
			// Replica 5 recovers; replica `silent` does not answer.
			c.crash(silent)
			r := c.rep(5)
			if silent == 5 {
				r = c.rep(4)
			}
			in := r.lookup(Dot{Node: 1, Seq: 1})
			r.recover(in)
			c.settle(200_000)
			for id := protocols.NodeID(2); id <= 5; id++ {
				if id == silent {
					continue
				}
				require.Equal(t, "[2.1]", c.committedVal(Dot{Node: 1, Seq: 1}).deps)
			}
			c.restart(silent)
			c.restart(1)
			c.settle(200_000)
			require.True(t, c.quiet())
			c.checkAgreement()
			c.checkOrder()
		})
	}
}

// TestLostFastDecision: the coordinator decides the fast path and crashes
// before its commit record is durable (the unsynced tail). It must not
// have executed the command (it waits for its own MCommit, which leaves
// only once the record is durable), so the recovery, which hears from it,
// may choose other dependencies safely.
func TestLostFastDecision(t *testing.T) {
	c := fastCommitThenCrash(t)
	require.Empty(t, c.hist[0], "the coordinator executed before its commit was durable")
	recs := c.envs[0].records
	c.envs[0].records = recs[:len(recs)-1] // lose the commit record
	delete(c.commits, Dot{Node: 1, Seq: 1})
	c.restart(1)
	// Replica 4 has seen c1 but not c2; it recovers with 1, 4, 5.
	c.crash(2)
	c.crash(3)
	r := c.rep(4)
	r.recover(r.lookup(Dot{Node: 1, Seq: 1}))
	c.settle(200_000)
	c.committedVal(Dot{Node: 1, Seq: 1})
	c.restart(2)
	c.restart(3)
	c.settle(200_000)
	require.True(t, c.quiet())
	c.checkAgreement()
	c.checkOrder()
}

// TestConcurrentRecoveries: two replicas recover the same command at the
// same time, with messages interleaved at random; they agree.
func TestConcurrentRecoveries(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		f := 1 + int(seed%2)
		c := newCluster(t, 5, f, seed)
		c.submit(2, "k")
		c.submit(3, "k")
		c.submit(1, "k")
		// Deliver a random part of the traffic, then crash the coordinator.
		for range c.rnd.IntN(20) {
			c.step(0.2)
		}
		c.crash(1)
		d := Dot{Node: 1, Seq: 1}
		a, b := c.rep(2), c.rep(3+protocols.NodeID(c.rnd.IntN(3)))
		if ia, ib := a.lookup(d), b.lookup(d); ia.phase != phCommit && ib.phase != phCommit {
			a.recover(ia)
			b.recover(ib)
		}
		for range 100 {
			c.step(0.1)
		}
		c.settle(200_000)
		require.True(t, c.quiet(), "seed %d", seed)
		c.checkAgreement()
		c.restart(1)
		c.settle(200_000)
		require.True(t, c.quiet(), "seed %d", seed)
		c.checkAgreement()
		c.checkOrder()
	}
}

// TestRandomSchedules runs small random workloads with loss, reordering,
// crashes and restarts (at most f down at a time), then heals and checks
// agreement, the order of conflicting commands in every incarnation, and
// that everything pending was resolved.
func TestRandomSchedules(t *testing.T) {
	seeds := uint64(300)
	if v, err := strconv.Atoi(os.Getenv("ATLAS_SEEDS")); err == nil {
		seeds = uint64(v)
	}
	for seed := uint64(0); seed < seeds; seed++ {
		c := randomSchedule(t, seed, false)
		c.checkAgreement()
		c.checkOrder()
	}
}

// randomSchedule runs one random workload of TestRandomSchedules, with
// checkpoints of random live replicas if checkpoints is set, heals and
// settles it, and fails unless everything pending was resolved.
func randomSchedule(t *testing.T, seed uint64, checkpoints bool) *cluster {
	n := []int{3, 5, 5, 7}[seed%4]
	f := 1 + int(seed/4%2)
	if f > (n-1)/2 {
		f = 1
	}
	c := newCluster(t, n, f, seed)
	down := map[protocols.NodeID]bool{}
	for step := 0; step < 400; step++ {
		switch x := c.rnd.IntN(100); {
		case x < 10:
			id := protocols.NodeID(1 + c.rnd.IntN(n))
			if !down[id] {
				c.submit(id, fmt.Sprintf("k%d", c.rnd.IntN(3)))
			}
		case x < 13:
			id := protocols.NodeID(1 + c.rnd.IntN(n))
			if down[id] {
				c.restart(id)
				delete(down, id)
			} else if len(down) < f {
				c.crash(id)
				down[id] = true
			}
		case checkpoints && x < 17:
			if id := protocols.NodeID(1 + c.rnd.IntN(n)); !down[id] {
				c.checkpoint(id)
			}
		case x < 25:
			c.tickAll()
		default:
			c.step(0.15)
		}
	}
	for _, id := range sortedNodes(down) {
		c.restart(id)
	}
	c.settle(2_000_000)
	require.True(t, c.quiet(), "seed %d: %v", seed, c)
	return c
}

func sortedNodes(m map[protocols.NodeID]bool) []protocols.NodeID {
	var out []protocols.NodeID
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

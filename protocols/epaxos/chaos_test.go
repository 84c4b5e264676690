package epaxos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// TestChaosRecoveries drives the harness with a seeded random scheduler
// that is much harsher on recovery than the simulator's sweeps: messages
// are delivered in random order, duplicated or dropped, replicas crash and
// restart from their records, and replicas start recoveries of random
// instances at random times, so many recoveries of
// one instance overlap. After a quiet period that delivers everything, the
// invariants must hold, every instance must be committed everywhere, and
// conflicting commands must execute in the same order at every replica.
func TestChaosRecoveries(t *testing.T) {
	for _, s := range []struct{ n, f, e int }{{3, 1, 1}, {5, 2, 2}, {5, 2, 1}, {7, 3, 2}} {
		for seed := range uint64(150) {
			t.Run(fmt.Sprintf("n=%d,f=%d,e=%d/seed=%d", s.n, s.f, s.e, seed), func(t *testing.T) {
				chaos(t, s.n, s.f, s.e, seed, false)
			})
		}
	}
}

// TestChaosWithCheckpoints is TestChaosRecoveries with compaction: replicas
// take checkpoints at random moments (and after every quiet round, once
// heartbeats have made instances stable), and a crashed replica restarts
// from its last checkpoint, its state machine from the snapshot taken with
// it, and the records after it. A command executed twice by one replica,
// across incarnations, fails the test.
func TestChaosWithCheckpoints(t *testing.T) {
	for _, s := range []struct{ n, f, e int }{{3, 1, 1}, {5, 2, 2}} {
		for seed := range uint64(100) {
			t.Run(fmt.Sprintf("n=%d,f=%d,e=%d/seed=%d", s.n, s.f, s.e, seed), func(t *testing.T) {
				chaos(t, s.n, s.f, s.e, seed, true)
			})
		}
	}
}

func chaos(t testing.TB, n, f, e int, seed uint64, compact bool) {
	rng := rand.New(rand.NewPCG(seed, uint64(n*100+f*10+e)))
	c := newCluster(t, n, f, e)
	keys := []string{"a", "b"}
	submitted := 0
	for step := 0; step < 400; step++ {
		if compact && rng.IntN(15) == 0 {
			c.checkpoint(c.ids[rng.IntN(n)])
		}
		switch x := rng.IntN(100); {
		case x < 6 && submitted < 8:
			id := c.ids[rng.IntN(n)]
			submitted++
			c.reps[id].Submit(protocols.Command{ID: protocols.CommandID{Client: uint64(submitted), Seq: 1},
				Keys: []string{keys[rng.IntN(len(keys))]}, Payload: []byte{byte(submitted)}})
		case x < 10:
			// a recovery of a random known instance at a random replica
			id := c.ids[rng.IntN(n)]
			if ds := c.reps[id].Dots(); len(ds) > 0 {
				d := ds[rng.IntN(len(ds))]
				if s, _ := c.reps[id].Instance(d); s.Phase != Committed {
					c.recover(id, d)
				}
			}
		case x < 11:
			// crash and restart from the (synchronously durable) records
			id := c.ids[rng.IntN(n)]
			if compact {
				c.restartFromCheckpoint(id, f, e)
			} else {
				c.start(id, f, e, c.envs[id].records)
			}
		case x < 15:
			c.reps[c.ids[rng.IntN(n)]].Tick()
		case x < 22 && len(c.queue) > 0:
			// loss; a replica's notes to itself are never lost (the
			// runtime loses them only with a crash, and a restart replays
			// the records)
			if i := rng.IntN(len(c.queue)); c.queue[i].from != c.queue[i].to {
				c.queue = slices.Delete(c.queue, i, i+1)
			}
		case x < 25 && len(c.queue) > 0:
			c.queue = append(c.queue, c.queue[rng.IntN(len(c.queue))]) // duplication
		case len(c.queue) > 0:
			i := rng.IntN(len(c.queue))
			m := c.queue[i]
			c.queue = slices.Delete(c.queue, i, i+1)
			c.reps[m.to].Step(m.from, m.m)
		}
	}
	c.checkInvariants()
	// Quiet period: reliable delivery and ticks until everything commits.
	for round := 0; round < 200; round++ {
		c.stabilize()
		if c.allCommitted() {
			break
		}
		for range 200 {
			for _, id := range c.ids {
				c.reps[id].Tick()
			}
			c.stabilize()
		}
		if compact {
			for _, id := range c.ids {
				c.checkpoint(id)
			}
			id := c.ids[rng.IntN(n)]
			c.restartFromCheckpoint(id, f, e)
		}
	}
	c.stabilize()
	require.True(t, c.allCommitted(), "every known instance commits once the network is quiet")
	c.checkInvariants()
	if compact {
		// Everything is executed everywhere: once the heartbeats tell, a
		// checkpoint forgets every instance. Restart every replica from
		// it; commands submitted afterwards still order after the
		// forgotten ones.
		c.heartbeats()
		for _, id := range c.ids {
			c.checkpoint(id)
			require.Empty(t, c.reps[id].Dots(), "replica %d forgets every stable instance", id)
			c.restartFromCheckpoint(id, f, e)
		}
		for i := range 3 {
			submitted++
			c.reps[c.ids[(int(seed)+i)%n]].Submit(protocols.Command{ID: protocols.CommandID{Client: uint64(submitted), Seq: 1},
				Keys: []string{keys[i%len(keys)]}, Payload: []byte{byte(submitted)}})
		}
		for range 20 {
			for _, id := range c.ids {
				c.tick(id, 100)
			}
			c.stabilize()
		}
		require.True(t, c.allCommitted(), "commands after the compaction commit")
		c.checkInvariants()
	}
	// Same order of conflicting commands everywhere, every command once.
	pos := map[protocols.NodeID]map[protocols.CommandID]int{}
	for _, id := range c.ids {
		pos[id] = map[protocols.CommandID]int{}
		for i, cmd := range c.envs[id].executed {
			_, dup := pos[id][cmd.ID]
			require.False(t, dup, "replica %d executed %v twice", id, cmd.ID)
			pos[id][cmd.ID] = i
		}
	}
	for _, a := range c.ids {
		for _, b := range c.ids {
			ea := c.envs[a].executed
			for i := range ea {
				for j := i + 1; j < len(ea); j++ {
					if !ea[i].Conflicts(ea[j]) {
						continue
					}
					pi, ok1 := pos[b][ea[i].ID]
					pj, ok2 := pos[b][ea[j].ID]
					if ok1 && ok2 {
						require.Less(t, pi, pj, "replicas %d and %d order %v and %v differently", a, b, ea[i].ID, ea[j].ID)
					}
				}
			}
		}
	}
}

// allCommitted reports whether every instance known anywhere is committed
// and executed (or passed) at every replica.
func (c *cluster) allCommitted() bool {
	for _, id := range c.ids {
		for _, d := range c.reps[id].Dots() {
			for _, other := range c.ids {
				if !c.reps[other].Executed(d) {
					return false
				}
			}
		}
	}
	return true
}

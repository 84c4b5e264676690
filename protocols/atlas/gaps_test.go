package atlas

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// requireStable fails unless every live replica executed every dot and
// garbage collection dropped all of them (nothing kept, nothing pending).
func (c *cluster) requireStable(want int) {
	for _, r := range c.reps {
		if r != nil {
			require.Len(c.t, c.executedAt(r.cfg.Self), want, "executions at %d", r.cfg.Self)
		}
	}
	for _, r := range c.reps {
		if r != nil {
			require.Empty(c.t, r.inst, "instances kept at %d: garbage collection stalled", r.cfg.Self)
			require.Empty(c.t, r.pending, "pending at %d", r.cfg.Self)
		}
	}
}

// TestGapsFilledBeforeAnyCheckpoint: a replica misses commits (it is down,
// or cut off, while they commit) and no replica ever checkpointed; no later
// command depends on them. It still learns them within a bounded number of
// ticks, and then garbage collection drops them at every replica.
func TestGapsFilledBeforeAnyCheckpoint(t *testing.T) {
	for _, mode := range []string{"restart", "partition"} {
		t.Run(mode, func(t *testing.T) {
			c := newCluster(t, 3, 1, 21)
			if mode == "restart" {
				c.crash(3)
			}
			cut := func(e envelope) bool { return mode == "partition" && (e.to == 3 || e.from == 3) }
			for i := range 8 {
				c.submit(protocols.NodeID(1+i%2), fmt.Sprintf("k%d", i%3))
			}
			// 1 and 2 commit and execute everything (recovering the
			// instances whose quorum included 3).
			for range 200 {
				if len(c.executedAt(1)) == 8 && len(c.executedAt(2)) == 8 {
					break
				}
				c.tickAll()
				c.drop(cut)
				for len(c.queue) > 0 {
					c.step(0)
					c.drop(cut)
				}
			}
			require.Len(t, c.executedAt(1), 8)
			require.Empty(t, c.executedAt(3), "3 was away")
			if mode == "restart" {
				c.restart(3)
			}
			// Bounded: a few suspicion timeouts (SuspectTicks is 10).
			c.run(6 * 10)
			c.requireStable(8)
			c.checkOrder()
		})
	}
}

package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/dso/replicated"
	"github.com/blossom-dso/blossom/replica"
)

// startLevels starts three servers with paxos rf 3 and the degradable
// levels (dsotest.Replicated.Levels) over an in-memory network that
// round-trips every level's messages through its codec.
func startLevels(t *testing.T) *pcluster {
	t.Helper()
	mem, err := dsotest.NewLevelNetwork("paxos")
	require.NoError(t, err)
	rep := &dsotest.Replicated{Protocol: "paxos", RF: 3, Dir: t.TempDir(), Net: mem, Levels: true}
	cl, err := dsotest.StartCluster(3, dsotest.Options{Replicate: rep.Replicate})
	require.NoError(t, err)
	t.Cleanup(func() {
		cl.Close()
		mem.Close()
	})
	return &pcluster{protocol: "paxos", rf: 3, cl: cl, rep: rep, net: mem}
}

// levelSnapshots returns the snapshot of level k's table at every running
// node (group 0: rf 3 of 3 nodes is one group).
func levelSnapshots(t *testing.T, pc *pcluster, k int) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, ep := range pc.rep.Endpoints() {
		h := pc.rep.Node(ep).Host()
		if h == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		require.NoError(t, h.InspectLevel(ctx, 0, k, func(sm replica.StateMachine) {
			b, err := sm.(*replicated.Table).Snapshot()
			require.NoError(t, err)
			out[ep] = b
		}))
		cancel()
	}
	return out
}

// TestLevelsOnTheDSO checks the degradable levels of persistent objects on
// a three-node cluster: weak counters, sets and maps take concurrent
// updates from three clients, every update counts (the tally is the number
// of acknowledged increments at every replica once they converge, also
// across a crash and restart of a replica in the middle); a client reads
// its own updates at the weak and sequential levels; a method the weak
// level does not offer, and an object addressed at another level than its
// own, fail naming the level and create nothing.
func TestLevelsOnTheDSO(t *testing.T) {
	pc := startLevels(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const perClient = 40
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := range 3 {
		c := pc.dial(t)
		weak := c.Persistent().At(degradable.Weak)
		seq := c.Persistent().At(degradable.Sequential)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				cnt := dso.NewCounter(weak, "hits")
				set := dso.NewSet(weak, "seen")
				m := dso.NewMap(weak, "sums")
				sc := dso.NewCounter(seq, "seqhits")
				for j := range perClient {
					if _, err := cnt.Increment(ctx, 1); err != nil {
						return err
					}
					v, err := cnt.Tally(ctx)
					if err != nil {
						return err
					}
					if v < int64(j+1) {
						return fmt.Errorf("client %d: weak tally %d after its own %d increments (read-your-writes)", i, v, j+1)
					}
					if _, err := set.Add(ctx, fmt.Sprint(i, "-", j%5)); err != nil {
						return err
					}
					if _, err := m.Merge(ctx, "k", int64(j), "sum"); err != nil {
						return err
					}
					if _, err := sc.Increment(ctx, 1); err != nil {
						return err
					}
					if v, err := sc.Tally(ctx); err != nil || v < int64(j+1) {
						return fmt.Errorf("client %d: sequential tally %d (%v) after its own %d increments", i, v, err, j+1)
					}
					if i == 0 && j == perClient/2 {
						// Crash and restart a replica in the middle.
						n := pc.rep.Node(pc.rep.Endpoints()[1])
						if err := n.Stop(); err != nil {
							return err
						}
						if err := n.Restart(); err != nil {
							return err
						}
					}
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// Convergence: every replica's weak table ends equal, with every
	// increment counted once.
	var snaps map[string][]byte
	for {
		snaps = levelSnapshots(t, pc, 2)
		eq := len(snaps) == 3
		var first []byte
		for _, b := range snaps {
			if first == nil {
				first = b
			}
			eq = eq && string(b) == string(first)
		}
		if eq {
			break
		}
		require.NoError(t, ctx.Err(), "the weak replicas never converged")
		time.Sleep(20 * time.Millisecond)
	}
	c := pc.dial(t)
	weak := c.Persistent().At(degradable.Weak)
	v, err := dso.NewCounter(weak, "hits").Tally(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3*perClient), v, "an increment was lost or counted twice")
	size, err := dso.NewSet(weak, "seen").Size(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(15), size)
	got, err := dso.NewMap(weak, "sums").Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, int64(3*perClient*(perClient-1)/2), got)
	sv, err := dso.NewCounter(c.Persistent().At(degradable.Sequential), "seqhits").Tally(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3*perClient), sv)

	// Refusals.
	_, err = dso.NewAtomicLong(weak, "al").CompareAndSet(ctx, 0, 1)
	require.ErrorIs(t, err, dso.ErrBadArgs)
	require.ErrorContains(t, err, "weak level")
	_, err = dso.NewCounter(c.Persistent(), "hits").Increment(ctx, 1)
	require.ErrorIs(t, err, dso.ErrBadArgs)
	require.ErrorContains(t, err, "created at the weak level")
	_, err = dso.NewCounter(c.Persistent().At(degradable.Sequential), "hits").Tally(ctx)
	require.ErrorContains(t, err, "created at the weak level")
	_, err = dso.NewAtomicLong(c.Persistent(), "lin").IncrementAndGet(ctx)
	require.NoError(t, err)
	_, err = dso.NewAtomicLong(weak, "lin").Get(ctx)
	require.ErrorContains(t, err, "created at the linearizable level")
	for _, b := range levelSnapshots(t, pc, 2) {
		other := replicated.New(nil, replicated.Options{Level: degradable.Weak})
		require.NoError(t, other.Restore(b))
		_, ok := other.Get(dso.Ref{Type: dso.TypeAtomicLong, Key: "lin"})
		require.False(t, ok, "a refused call made a second object")
	}
}

// TestLevelsRefusedWithoutLevels checks that a cluster started without
// levels refuses a call at the weak level by name.
func TestLevelsRefusedWithoutLevels(t *testing.T) {
	pc := startPersistent(t, "paxos", 3, 3)
	c := pc.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := dso.NewCounter(c.Persistent().At(degradable.Weak), "w").Increment(ctx, 1)
	require.ErrorIs(t, err, dso.ErrFailed)
	require.ErrorContains(t, err, "does not run the weak level")
}

package remote

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
)

// checkSetReads checks one client's reads of a grow-only set: each read
// holds only issued elements (valid), every element the client added
// before it (read-your-writes) and every element an earlier read held
// (monotonic reads).
func checkSetReads(client int, issued map[string]bool, reads [][]any, own []int) error {
	prev := map[string]bool{}
	for i, r := range reads {
		got := map[string]bool{}
		for _, e := range r {
			s, _ := e.(string)
			if !issued[s] {
				return fmt.Errorf("client %d read %d holds %v, never added", client, i, e)
			}
			got[s] = true
		}
		for j := range own[i] {
			if e := fmt.Sprint(client, "-", j); !got[e] {
				return fmt.Errorf("client %d read %d misses its own %s (read-your-writes)", client, i, e)
			}
		}
		for e := range prev {
			if !got[e] {
				return fmt.Errorf("client %d read %d misses %s, which an earlier read held (monotonic reads)", client, i, e)
			}
		}
		prev = got
	}
	return nil
}

// runSet runs four clients, each with its own Flusher (flushing every
// period) and segment of the
// weak set "s" made with opts, adding 120 elements of its own and reading
// the members every third add; a replica other than the set's owner
// crashes and restarts halfway. It returns the number of elements and the
// clients' errors (a failed check of their reads), or nil.
func runSet(t *testing.T, cl *dsotest.Cluster, rep *dsotest.Replicated, period time.Duration, opts ...Option) (int64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const clients, adds = 4, 120
	issued := map[string]bool{}
	for i := range clients {
		for j := range adds {
			issued[fmt.Sprint(i, "-", j)] = true
		}
	}
	err := drive(clients, adds, nonOwner(t, cl, rep, dso.TypeSet, "s"), func(i int) (func(int) error, func() error) {
		c, err := client.Dial(ctx, cl.Endpoints...)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		f, err := NewFlusher(period)
		require.NoError(t, err)
		seg, err := NewSet(c.Persistent().At(degradable.Weak), "s", f, opts...)
		require.NoError(t, err)
		var reads [][]any
		var own []int
		step := func(j int) error {
			if err := seg.Add(fmt.Sprint(i, "-", j)); err != nil {
				return err
			}
			if j%3 == 0 {
				m, err := seg.Members(ctx)
				if err != nil {
					return err
				}
				reads, own = append(reads, m), append(own, j+1)
			}
			return nil
		}
		done := func() error {
			if err := f.Close(ctx); err != nil {
				return err
			}
			if err := seg.Add("late"); err == nil {
				return fmt.Errorf("client %d: an Add after the flusher closed succeeded", i)
			}
			return checkSetReads(i, issued, reads, own)
		}
		return step, done
	})
	return clients * adds, err
}

// TestSetSegments checks the weak set's segments on a three-node cluster
// with a replica crashed and restarted midway: every client's reads are
// valid, read-your-writes and monotonic, and once every flusher has
// closed, the replicas converge to one table holding every element.
func TestSetSegments(t *testing.T) {
	cl, rep := cluster(t)
	total, err := runSet(t, cl, rep, time.Millisecond, PullEvery(4))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	converge(ctx, t, rep)
	c, err := client.Dial(ctx, cl.Endpoints...)
	require.NoError(t, err)
	defer c.Close()
	n, err := dso.NewSet(c.Persistent().At(degradable.Weak), "s").Size(ctx)
	require.NoError(t, err)
	require.Equal(t, total, n)
}

// TestSabotageSetForgetOwnIsCaught plants set segments whose reads leave
// out the client's unsent elements: the read-your-writes check must catch
// it.
func TestSabotageSetForgetOwnIsCaught(t *testing.T) {
	cl, rep := cluster(t)
	_, err := runSet(t, cl, rep, time.Hour, PullEvery(1000), func(c *config) { c.bug = bugForgetOwn })
	require.Error(t, err)
	require.ErrorContains(t, err, "read-your-writes")
	t.Logf("caught: %v", err)
}

package remote

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/degradable/check"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/dsotest"
)

// setRead is one Members read of a client: its interval and what it
// returned.
type setRead struct {
	client    int
	call, ret int64
	members   map[string]bool
}

// setHistory is what the clients of a weak set did: their updates (as
// check.SetOp) and their reads.
type setHistory struct {
	mu      sync.Mutex
	updates []check.SetOp[string]
	reads   []setRead
}

// checkSet checks the history, with the quiescent members final (one
// list per client), against the weak level with check.SetWeak (an
// observed-remove set: validity, read-your-writes, monotonic reads,
// convergence to the merge of every update), element by element: each
// read becomes one Contains per element.
func (h *setHistory) checkSet(clients int, final []string) error {
	universe := map[string]bool{}
	for _, u := range h.updates {
		universe[u.Elem] = true
	}
	for _, e := range final {
		universe[e] = true
	}
	for _, e := range slices.Sorted(func(yield func(string) bool) {
		for e := range universe {
			if !yield(e) {
				return
			}
		}
	}) {
		var ops []check.SetOp[string]
		for _, u := range h.updates {
			if u.Elem == e {
				ops = append(ops, u)
			}
		}
		for _, r := range h.reads {
			ops = append(ops, check.SetOp[string]{Client: r.client, Call: r.call, Return: r.ret, Kind: check.SetContains, Elem: e, Result: r.members[e]})
		}
		fin := make([][]string, clients)
		if slices.Contains(final, e) {
			for i := range fin {
				fin[i] = []string{e}
			}
		}
		if err := check.SetWeak(ops, fin); err != nil {
			return err
		}
	}
	return nil
}

// runSet runs four clients, each with its own Flusher (flushing every
// period) and segment of the weak set "s" made with opts, for 120 steps:
// each adds an element of its own per step, removes its element of two
// steps before every third step, adds and removes elements all clients
// share, and reads the members every third step; a replica other than the
// set's owner crashes and restarts halfway. It returns the history and
// the clients' errors, or nil.
func runSet(t *testing.T, cl *dsotest.Cluster, rep *dsotest.Replicated, period time.Duration, opts ...Option) (*setHistory, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const clients, steps = 4, 120
	h := &setHistory{}
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	err := drive(clients, steps, nonOwner(t, cl, rep, dso.TypeSet, "s"), func(i int) (func(int) error, func() error) {
		c := dial(ctx, t, cl)
		f, err := NewFlusher(period)
		require.NoError(t, err)
		seg, err := NewSet(c.Persistent().At(degradable.Weak), "s", f, opts...)
		require.NoError(t, err)
		var ups []check.SetOp[string]
		var reads []setRead
		update := func(kind check.SetKind, e string) error {
			call := now()
			var err error
			if kind == check.SetAdd {
				err = seg.Add(e)
			} else {
				err = seg.Remove(e)
			}
			ups = append(ups, check.SetOp[string]{Client: i, Call: call, Return: now(), Kind: kind, Elem: e})
			return err
		}
		step := func(j int) error {
			if err := update(check.SetAdd, fmt.Sprint(i, "-", j)); err != nil {
				return err
			}
			if j%3 == 2 {
				if err := update(check.SetRemove, fmt.Sprint(i, "-", j-2)); err != nil {
					return err
				}
			}
			switch j % 4 {
			case 1:
				if err := update(check.SetAdd, fmt.Sprint("shared-", j%5)); err != nil {
					return err
				}
			case 3:
				if err := update(check.SetRemove, fmt.Sprint("shared-", (j+i)%5)); err != nil {
					return err
				}
			}
			if j%3 == 0 {
				call := now()
				m, err := seg.Members(ctx)
				if err != nil {
					return err
				}
				r := setRead{client: i, call: call, ret: now(), members: map[string]bool{}}
				for _, e := range m {
					s, _ := e.(string)
					r.members[s] = true
				}
				reads = append(reads, r)
			}
			return nil
		}
		done := func() error {
			err := f.Close(ctx)
			h.mu.Lock()
			h.updates, h.reads = append(h.updates, ups...), append(h.reads, reads...)
			h.mu.Unlock()
			if err != nil {
				return err
			}
			if err := seg.Add("late"); err == nil {
				return fmt.Errorf("client %d: an Add after the flusher closed succeeded", i)
			}
			return nil
		}
		return step, done
	})
	return h, err
}

// finalMembers waits for the weak replicas to converge and returns the
// set's members.
func finalMembers(t *testing.T, cl *dsotest.Cluster, rep *dsotest.Replicated) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	converge(ctx, t, rep)
	c := dial(ctx, t, cl)
	m, err := dso.NewSet(c.Persistent().At(degradable.Weak), "s").Members(ctx)
	require.NoError(t, err)
	out := make([]string, len(m))
	for i, e := range m {
		out[i], _ = e.(string)
	}
	return out
}

// TestSetSegments checks the weak set's segments, with removals, on a
// three-node cluster with a replica crashed and restarted midway: every
// client's reads and the converged replicas keep the observed-remove
// set's guarantee (checkSet); the elements a client removed are gone and
// the others there.
func TestSetSegments(t *testing.T) {
	cl, rep := cluster(t)
	h, err := runSet(t, cl, rep, time.Millisecond, PullEvery(4))
	require.NoError(t, err)
	final := finalMembers(t, cl, rep)
	require.NoError(t, h.checkSet(4, final))
	require.Contains(t, final, "0-119")
	require.NotContains(t, final, "0-117", "removed by its client")
}

// TestSabotageSetForgetOwnIsCaught plants set segments whose reads leave
// out the client's unsent adds: the check must catch it
// (read-your-writes).
func TestSabotageSetForgetOwnIsCaught(t *testing.T) {
	cl, rep := cluster(t)
	h, err := runSet(t, cl, rep, time.Hour, PullEvery(1000), func(c *config) { c.bug = bugForgetOwn })
	require.NoError(t, err)
	err = h.checkSet(4, finalMembers(t, cl, rep))
	require.ErrorIs(t, err, check.ErrViolation)
	require.ErrorContains(t, err, "read-your-writes")
	t.Logf("caught: %v", err)
}

// TestSabotageSetRemoveStaysIsCaught plants set segments whose Remove
// leaves the element visible until the next pull: the check must catch
// it (read-your-writes after the client's own remove).
func TestSabotageSetRemoveStaysIsCaught(t *testing.T) {
	cl, rep := cluster(t)
	h, err := runSet(t, cl, rep, time.Hour, PullEvery(1000), func(c *config) { c.bug = bugRemoveStays })
	require.NoError(t, err)
	err = h.checkSet(4, finalMembers(t, cl, rep))
	require.ErrorIs(t, err, check.ErrViolation)
	require.ErrorContains(t, err, "remove")
	t.Logf("caught: %v", err)
}

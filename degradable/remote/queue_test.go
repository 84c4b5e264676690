package remote

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/degradable/check"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/dsotest"
)

// queueHistory is what the clients of a weak queue did.
type queueHistory struct {
	mu  sync.Mutex
	ops []check.QueueOp[string]
}

// runQueue runs four clients for 120 steps on the weak queue "q", each
// with its own Flusher (flushing every period) and segment made with
// opts(i): each enqueues an element of its own per step, and the readers
// (reader(i)) dequeue every step and read the length every fifth; a
// replica other than the queue's owner crashes and restarts halfway. It
// returns the history and the clients' errors, or nil.
func runQueue(t *testing.T, cl *dsotest.Cluster, rep *dsotest.Replicated, period time.Duration, reader func(i int) bool, opts func(i int) []Option) (*queueHistory, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const clients, steps = 4, 120
	h := &queueHistory{}
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	err := drive(clients, steps, nonOwner(t, cl, rep, dso.TypeList, "q"), func(i int) (func(int) error, func() error) {
		c := dial(ctx, t, cl)
		f, err := NewFlusher(period)
		require.NoError(t, err)
		seg, err := NewQueue(c.Persistent().At(degradable.Weak), "q", f, opts(i)...)
		require.NoError(t, err)
		var ops []check.QueueOp[string]
		step := func(j int) error {
			e := fmt.Sprint(i, "-", j)
			call := now()
			if err := seg.Enqueue(e); err != nil {
				return err
			}
			ops = append(ops, check.QueueOp[string]{Client: i, Call: call, Return: now(), Kind: check.Enqueue, Elem: e})
			if !reader(i) {
				return nil
			}
			call = now()
			v, ok, err := seg.Dequeue(ctx)
			if err != nil {
				return err
			}
			s, _ := v.(string)
			ops = append(ops, check.QueueOp[string]{Client: i, Call: call, Return: now(), Kind: check.Dequeue, Elem: s, Ok: ok})
			if j%5 == 0 {
				if _, err := seg.Len(ctx); err != nil {
					return err
				}
			}
			return nil
		}
		done := func() error {
			err := f.Close(ctx)
			h.mu.Lock()
			h.ops = append(h.ops, ops...)
			h.mu.Unlock()
			return err
		}
		return step, done
	})
	return h, err
}

// finalQueue waits for the weak replicas to converge and returns the
// queue's elements, once per client.
func finalQueue(t *testing.T, cl *dsotest.Cluster, rep *dsotest.Replicated, clients int) [][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	converge(ctx, t, rep)
	c := dial(ctx, t, cl)
	l, err := dso.NewList(c.Persistent().At(degradable.Weak), "q").ToList(ctx)
	require.NoError(t, err)
	one := make([]string, len(l))
	for i, e := range l {
		one[i], _ = e.(string)
	}
	out := make([][]string, clients)
	for i := range out {
		out[i] = one
	}
	return out
}

// onceEach checks that no element was dequeued twice (a single reader's
// exactly-once delivery).
func onceEach(ops []check.QueueOp[string]) error {
	seen := map[string]bool{}
	for _, op := range ops {
		if op.Kind == check.Dequeue && op.Ok {
			if seen[op.Elem] {
				return fmt.Errorf("%v was dequeued twice from a single-reader queue", op.Elem)
			}
			seen[op.Elem] = true
		}
	}
	return nil
}

func all(int) bool { return true }

// TestQueueSegments checks the weak queue's segments, four writers that
// all read, on a three-node cluster with a replica crashed and restarted
// midway, with check.QueueWeak: each client's dequeues in each writer's
// order, never one element twice per client, read-your-writes,
// convergence, no element lost.
func TestQueueSegments(t *testing.T) {
	cl, rep := cluster(t)
	h, err := runQueue(t, cl, rep, time.Millisecond, all, func(int) []Option { return []Option{PullEvery(4)} })
	require.NoError(t, err)
	require.NoError(t, check.QueueWeak(h.ops, finalQueue(t, cl, rep, 4)))
}

// TestQueueSingleReader checks a single-reader queue: client 0 reads,
// the others write; every element is dequeued at most once, and
// check.QueueWeak holds; a second SingleReader segment's Dequeue fails
// with ErrSecondReader.
func TestQueueSingleReader(t *testing.T) {
	cl, rep := cluster(t)
	h, err := runQueue(t, cl, rep, time.Millisecond, func(i int) bool { return i == 0 }, func(int) []Option { return []Option{PullEvery(4), SingleReader()} })
	require.NoError(t, err)
	require.NoError(t, check.QueueWeak(h.ops, finalQueue(t, cl, rep, 4)))
	require.NoError(t, onceEach(h.ops))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := dial(ctx, t, cl)
	f, err := NewFlusher(time.Millisecond)
	require.NoError(t, err)
	defer f.Close(ctx)
	other, err := NewQueue(c.Persistent().At(degradable.Weak), "q", f, SingleReader())
	require.NoError(t, err)
	require.NoError(t, other.Enqueue("fine"), "a second segment may write")
	_, _, err = other.Dequeue(ctx)
	require.ErrorIs(t, err, ErrSecondReader)
	t.Logf("refused: %v", err)
	_, err = NewCounter(c.Persistent().At(degradable.Weak), "x", SingleReader())
	require.ErrorContains(t, err, "SingleReader")
}

// TestSabotageQueueDequeueTwiceIsCaught plants queue segments whose
// Dequeue leaves the item in the view: the check must catch a client
// dequeuing one element twice.
func TestSabotageQueueDequeueTwiceIsCaught(t *testing.T) {
	cl, rep := cluster(t)
	h, err := runQueue(t, cl, rep, time.Millisecond, all, func(int) []Option {
		return []Option{PullEvery(1000), func(c *config) { c.bug = bugDequeueTwice }}
	})
	require.NoError(t, err)
	err = check.QueueWeak(h.ops, finalQueue(t, cl, rep, 4))
	require.ErrorIs(t, err, check.ErrViolation)
	require.ErrorContains(t, err, "already dequeued")
	t.Logf("caught: %v", err)
}

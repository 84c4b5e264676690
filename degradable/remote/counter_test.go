package remote

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/dso/replicated"
	"github.com/blossom-dso/blossom/dso/ring"
	"github.com/blossom-dso/blossom/replica"
)

// cluster starts three servers with paxos rf 3 and the degradable levels.
func cluster(t *testing.T) (*dsotest.Cluster, *dsotest.Replicated) {
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
	return cl, rep
}

// dial returns a client of cl, closed when the test ends.
func dial(ctx context.Context, t *testing.T, cl *dsotest.Cluster) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx, cl.Endpoints...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// read is one Value of a client: its result and the client's additions
// before it.
type read struct{ value, own int64 }

// checkReads checks one client's reads of an increment-only counter that
// other clients also increment: each read holds at least the client's own
// increments before it (read-your-writes) and no read is below an earlier
// one (monotonic reads).
func checkReads(client int, reads []read) error {
	var last int64
	for i, r := range reads {
		if r.value < r.own {
			return fmt.Errorf("client %d read %d: %d, below its own %d increments (read-your-writes)", client, i, r.value, r.own)
		}
		if r.value < last {
			return fmt.Errorf("client %d read %d: %d after %d (monotonic reads)", client, i, r.value, last)
		}
		last = r.value
	}
	return nil
}

// nonOwner returns a replica node of rep other than the owner of the
// object typ/key: the one the tests crash and restart.
func nonOwner(t *testing.T, cl *dsotest.Cluster, rep *dsotest.Replicated, typ, key string) *dsotest.ReplicatedNode {
	t.Helper()
	rg, err := ring.New(cl.Endpoints, 0)
	require.NoError(t, err)
	owner := rg.Owner(typ, key)
	var victim *dsotest.ReplicatedNode
	for _, ep := range rep.Endpoints() {
		if ep != owner {
			victim = rep.Node(ep)
		}
	}
	return victim
}

// drive runs clients clients at once, each doing steps steps: newClient(i)
// (called here, before any starts) returns client i's step and the done it
// calls after its last step. Client 0 stops and restarts victim after
// step steps/2. It returns the first client's error, or nil.
func drive(clients, steps int, victim *dsotest.ReplicatedNode, newClient func(i int) (step func(j int) error, done func() error)) error {
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		step, done := newClient(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range steps {
				if err := step(j); err != nil {
					errs[i] = err
					return
				}
				if i == 0 && j == steps/2 {
					if err := victim.Stop(); err != nil {
						errs[i] = err
						return
					}
					if err := victim.Restart(); err != nil {
						errs[i] = err
						return
					}
				}
			}
			errs[i] = done()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// run runs four clients, each with its own segment of the weak counter
// "hits" made with opts, adding 1 300 times and reading every third
// operation; it crashes and restarts a replica other than the counter's
// owner halfway. It returns the total of the additions and the clients'
// errors (a failed check of their reads), or nil.
func run(t *testing.T, cl *dsotest.Cluster, rep *dsotest.Replicated, opts ...Option) (int64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const clients, adds = 4, 300
	err := drive(clients, adds, nonOwner(t, cl, rep, dso.TypeCounter, "hits"), func(i int) (func(int) error, func() error) {
		c := dial(ctx, t, cl)
		seg, err := NewCounter(c.Persistent().At(degradable.Weak), "hits", opts...)
		require.NoError(t, err)
		var reads []read
		step := func(j int) error {
			if err := seg.Add(1); err != nil {
				return err
			}
			if j%3 == 0 {
				v, err := seg.Value(ctx)
				if err != nil {
					return err
				}
				reads = append(reads, read{v, int64(j + 1)})
			}
			return nil
		}
		done := func() error {
			if err := seg.Close(ctx); err != nil {
				return err
			}
			return checkReads(i, reads)
		}
		return step, done
	})
	return clients * adds, err
}

// converge waits until every node's weak table (level 2 of group 0) has
// the same snapshot.
func converge(ctx context.Context, t *testing.T, rep *dsotest.Replicated) {
	t.Helper()
	for {
		snaps := map[string]bool{}
		for _, ep := range rep.Endpoints() {
			require.NoError(t, rep.Node(ep).Host().InspectLevel(ctx, 0, 2, func(sm replica.StateMachine) {
				b, err := sm.(*replicated.Table).Snapshot()
				require.NoError(t, err)
				snaps[string(b)] = true
			}))
		}
		if len(snaps) == 1 {
			return
		}
		require.NoError(t, ctx.Err(), "the weak replicas never converged")
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCounterSegments checks the weak counter's segments on a three-node
// cluster with a replica crashed and restarted midway: every client's
// reads are read-your-writes and monotonic, and once every segment has
// closed, the replicas converge to one table whose counter is the number
// of additions (each counted once).
func TestCounterSegments(t *testing.T) {
	cl, rep := cluster(t)
	total, err := run(t, cl, rep, PullEvery(4), FlushEvery(time.Millisecond))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	converge(ctx, t, rep)
	c := dial(ctx, t, cl)
	v, err := dso.NewCounter(c.Persistent().At(degradable.Weak), "hits").Tally(ctx)
	require.NoError(t, err)
	require.Equal(t, total, v, "an addition was lost or counted twice")
}

// TestSabotageForgetOwnIsCaught plants segments whose reads leave out the
// client's unsent additions: the read-your-writes check must catch it.
func TestSabotageForgetOwnIsCaught(t *testing.T) {
	cl, rep := cluster(t)
	_, err := run(t, cl, rep, PullEvery(1000), FlushEvery(time.Hour), func(c *config) { c.bug = bugForgetOwn })
	require.Error(t, err)
	require.ErrorContains(t, err, "read-your-writes")
	t.Logf("caught: %v", err)
}

// TestNewCounterRefusals checks the arguments NewCounter refuses.
func TestNewCounterRefusals(t *testing.T) {
	cl, _ := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := dial(ctx, t, cl)
	_, err := NewCounter(c.Persistent(), "x")
	require.ErrorContains(t, err, "weak level")
	_, err = NewCounter(c.Persistent().At(degradable.Weak), "x", PullEvery(0))
	require.Error(t, err)
	_, err = NewCounter(c.Persistent().At(degradable.Weak), "x", FlushEvery(0))
	require.Error(t, err)
	seg, err := NewCounter(c.Persistent().At(degradable.Weak), "x")
	require.NoError(t, err)
	require.NoError(t, seg.Close(ctx))
	require.ErrorIs(t, seg.Add(1), ErrClosed)
}

// cutAfterApply is a caller that, for its first cut updates (calls other
// than reads), makes the call and then fails it, as a connection cut after
// the replica applied the call but before its answer arrived.
type cutAfterApply struct {
	dso.Caller
	cut int
}

func (c *cutAfterApply) Call(ctx context.Context, ref dso.Ref, method string, args, ctor []any) (any, error) {
	v, err := c.Caller.Call(ctx, ref, method, args, ctor)
	if err == nil && method != "tally" && c.cut > 0 {
		c.cut--
		return nil, fmt.Errorf("%w: connection cut after the call (test)", client.ErrUnavailable)
	}
	return v, err
}

// TestCounterFlushOnce cuts the connection after a replica applied a
// segment's flush, twice: the segment sends the flush again, and the
// counter must count its additions once.
func TestCounterFlushOnce(t *testing.T) {
	cl, rep := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dial(ctx, t, cl)
	p := c.Persistent().At(degradable.Weak)
	seg, err := NewCounter(p, "once", FlushEvery(time.Hour), func(cfg *config) {
		cfg.wrap = func(d dso.Caller) dso.Caller { return &cutAfterApply{Caller: d, cut: 2} }
	})
	require.NoError(t, err)
	require.NoError(t, seg.Add(5))
	require.Error(t, seg.Flush(ctx), "the first flush's answer was cut")
	require.NoError(t, seg.Add(2))
	require.Error(t, seg.Flush(ctx), "the second flush's answer was cut")
	v, err := seg.Value(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(7), v, "the segment's own view")
	require.NoError(t, seg.Close(ctx))
	converge(ctx, t, rep)
	v, err = dso.NewCounter(p, "once").Tally(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(7), v, "a flush sent again after its answer was lost counted twice")
}

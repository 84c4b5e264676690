package client_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/stretchr/testify/require"
)

// dialMany returns n clients of the cluster.
func dialMany(t *testing.T, cl *dsotest.Cluster, n int) []*client.Client {
	t.Helper()
	cs := make([]*client.Client, n)
	for i := range cs {
		c, err := client.DialOptions(testCtx(t), client.Options{Endpoints: cl.Endpoints, ConnsPerNode: 1})
		require.NoError(t, err)
		cs[i] = c
		t.Cleanup(func() { c.Close() })
	}
	return cs
}

func TestThousandClientsCrossHundredBarriersBackToBack(t *testing.T) {
	t.Parallel()
	const parties, conns = 1000, 50
	rounds := 100
	if raceEnabled || testing.Short() {
		rounds = 20 // the race detector makes each crossing several times slower
	}
	cl, _ := startCluster(t, 1, dsotest.Options{})
	cs := dialMany(t, cl, conns)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var bad atomic.Int64
	// after[r] counts the parties that have crossed barrier r; nobody may
	// cross barrier r+1 before every party has arrived at it, so when a
	// party leaves barrier r all parties must have left barrier r-1.
	arrived := make([]atomic.Int64, rounds)
	for p := 0; p < parties; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			b := dso.NewCyclicBarrier(cs[p%conns], "b1000", parties)
			for r := 0; r < rounds; r++ {
				arrived[r].Add(1)
				g, err := b.Await(ctx)
				if err != nil || g != int64(r) || arrived[r].Load() != parties {
					bad.Add(1)
					t.Errorf("party %d round %d: generation %d, err %v, arrived %d", p, r, g, err, arrived[r].Load())
					return
				}
			}
		}(p)
	}
	wg.Wait()
	require.Equal(t, int64(0), bad.Load())
}

func TestSemaphoreBoundsConcurrencyUnderContention(t *testing.T) {
	t.Parallel()
	const workers, permits, iters = 64, 3, 20
	cl, _ := startCluster(t, 1, dsotest.Options{})
	cs := dialMany(t, cl, 8)
	ctx := testCtx(t)
	var inside, maxInside atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s := dso.NewSemaphore(cs[w%len(cs)], "sem", permits)
			for i := 0; i < iters; i++ {
				if err := s.Acquire(ctx, 1); err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				for {
					m := maxInside.Load()
					if n <= m || maxInside.CompareAndSwap(m, n) {
						break
					}
				}
				inside.Add(-1)
				if err := s.Release(ctx, 1); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	require.True(t, maxInside.Load() <= permits, maxInside.Load())
	n, err := dso.NewSemaphore(cs[0], "sem", permits).AvailablePermits(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(permits), n)
}

func TestLatchReleasesEveryWaiterUnderContention(t *testing.T) {
	t.Parallel()
	const waiters, counters = 200, 50
	cl, _ := startCluster(t, 1, dsotest.Options{})
	cs := dialMany(t, cl, 8)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	var released atomic.Int64
	for i := 0; i < waiters; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := dso.NewCountDownLatch(cs[i%8], "latch", counters).Await(ctx); err != nil {
				t.Error(err)
				return
			}
			released.Add(1)
		}(i)
	}
	for i := 0; i < counters; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := dso.NewCountDownLatch(cs[i%8], "latch", counters).CountDown(ctx); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	require.Equal(t, int64(waiters), released.Load())
}

func TestScalableBarrierSynchronizesGenerations(t *testing.T) {
	t.Parallel()
	const parties, rounds = 13, 20
	cl, _ := startCluster(t, 3, dsotest.Options{})
	cs := dialMany(t, cl, 4)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	arrived := make([]atomic.Int64, rounds)
	for p := 0; p < parties; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			b := dso.NewScalableCyclicBarrier(cs[p%4], "sb", parties)
			for r := 0; r < rounds; r++ {
				arrived[r].Add(1)
				g, err := b.Await(ctx)
				if err != nil || g != int64(r) || arrived[r].Load() != parties {
					t.Errorf("party %d round %d: gen %d err %v arrived %d", p, r, g, err, arrived[r].Load())
					return
				}
			}
		}(p)
	}
	wg.Wait()
}

func TestThreeNodeClusterSpreadsObjectsOverTheRing(t *testing.T) {
	t.Parallel()
	cl, c := startCluster(t, 3, dsotest.Options{})
	ctx := testCtx(t)
	require.Equal(t, 3, len(c.Members()))
	// A client that knows one endpoint learns the others.
	one, err := client.Dial(ctx, cl.Endpoints[2])
	require.NoError(t, err)
	defer one.Close()
	require.Equal(t, c.Members(), one.Members())
	const objects, workers = 300, 12
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cc := c
			if w%2 == 1 {
				cc = one
			}
			for i := 0; i < objects; i++ {
				if _, err := dso.NewCounter(cc, fmt.Sprint("c", i)).Increment(ctx, 1); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	for i := 0; i < objects; i++ {
		n, err := dso.NewCounter(c, fmt.Sprint("c", i)).Tally(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(workers), n)
	}
	total := 0
	for _, s := range cl.Servers {
		require.True(t, s.NumObjects() > objects/6, "node holds too few objects", s.NumObjects())
		total += s.NumObjects()
	}
	require.Equal(t, objects, total)
	// A call sent straight to a node that does not own the object is refused.
	ref := dso.Ref{Type: dso.TypeCounter, Key: "c0"}
	var wrong string
	for _, e := range cl.Endpoints {
		if e != c.Owner(ref) {
			wrong = e
		}
	}
	direct, err := client.DialOptions(ctx, client.Options{Endpoints: []string{wrong}, NoDiscovery: true})
	require.NoError(t, err)
	defer direct.Close()
	_, err = dso.NewCounter(direct, "c0").Tally(ctx)
	require.ErrorIs(t, err, dso.ErrWrongNode)
}

func TestClientReconnectsAfterServerRestart(t *testing.T) {
	t.Parallel()
	cl, err := dsotest.StartCluster(1, dsotest.Options{})
	require.NoError(t, err)
	ctx := testCtx(t)
	c, err := client.DialOptions(ctx, client.Options{Endpoints: cl.Endpoints,
		RetryFor: 500 * time.Millisecond, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	a := dso.NewAtomicLong(c, "x")
	_, err = a.AddAndGet(ctx, 1)
	require.NoError(t, err)
	addr := cl.Endpoints[0]
	require.NoError(t, cl.Close())
	_, err = a.AddAndGet(ctx, 1)
	require.ErrorIs(t, err, client.ErrUnavailable)
	cl2, err := dsotest.StartCluster(1, dsotest.Options{BasePort: portOf(t, addr)})
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	defer cl2.Close()
	v, err := a.AddAndGet(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, int64(1), v) // ephemeral: the restarted node starts empty
}

func portOf(t *testing.T, addr string) int {
	var p int
	_, err := fmt.Sscanf(addr[len("127.0.0.1:"):], "%d", &p)
	require.NoError(t, err)
	return p
}

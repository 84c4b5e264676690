package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/stretchr/testify/require"
)

func startCluster(t testing.TB, n int, o dsotest.Options) (*dsotest.Cluster, *client.Client) {
	t.Helper()
	cl, err := dsotest.StartCluster(n, o)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := cl.Dial(ctx)
	require.NoError(t, err)
	t.Cleanup(func() {
		c.Close()
		require.NoError(t, cl.Close())
	})
	return cl, c
}

// dialOne returns a client of the cluster's first node with one
// connection.
func dialOne(t *testing.T, cl *dsotest.Cluster) *client.Client {
	t.Helper()
	c, err := client.DialOptions(testCtx(t), client.Options{Endpoints: cl.Endpoints[:1], ConnsPerNode: 1, NoDiscovery: true})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestAtomicLongRoundTrip(t *testing.T) {
	t.Parallel()
	_, c := startCluster(t, 1, dsotest.Options{})
	ctx := testCtx(t)
	a := dso.NewAtomicLong(c, "hits", 10)
	v, err := a.AddAndGet(ctx, 5)
	require.NoError(t, err)
	require.Equal(t, int64(15), v)
	ok, err := a.CompareAndSet(ctx, 15, 1)
	require.NoError(t, err)
	require.True(t, ok)
	v, err = a.Get(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), v)
}

// A connection that has sent a call larger than 1 MiB goes on sending
// concurrent calls intact. Its writer used to keep, after such a call, a
// spare buffer that was also the buffer callers appended to, and sent
// frames that other callers were overwriting: the server read garbage,
// and calls hung or failed.
func TestCallsAfterAHugeCallAreNotCorrupted(t *testing.T) {
	cl, _ := startCluster(t, 1, dsotest.Options{})
	c := dialOne(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	ref := dso.NewAtomicReference(c, "huge")
	require.NoError(t, ref.Set(ctx, []byte("small"))) // the writer's buffers alternate
	require.NoError(t, ref.Set(ctx, []byte("small")))
	require.NoError(t, ref.Set(ctx, make([]byte, 3<<20)))
	const goroutines, calls = 16, 300
	concurrently(t, goroutines, func(g int) error {
		n := dso.NewAtomicLong(c, fmt.Sprint("n", g))
		for i := 1; i <= calls; i++ {
			v, err := n.AddAndGet(ctx, 1)
			if err != nil {
				return err
			}
			if v != int64(i) {
				return fmt.Errorf("%s: got %d, want %d", n.Ref(), v, i)
			}
		}
		return nil
	})
}

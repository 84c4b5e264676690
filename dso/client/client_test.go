package client_test

import (
	"context"
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

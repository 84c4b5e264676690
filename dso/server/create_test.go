package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/dsotest"
)

// Defect 5: any call, even a read or an unknown method, created an object,
// with a name of any length, without limit.
func TestReadsAndUnknownMethodsCreateNothing(t *testing.T) {
	t.Parallel()
	cl, err := dsotest.StartCluster(1, dsotest.Options{MaxObjects: 2, MaxKey: 64})
	require.NoError(t, err)
	defer cl.Close()
	s := cl.Servers[0]
	ctx := context.Background()
	call := func(typ, key, method string, args ...any) (any, error) {
		return s.Invoke(ctx, dso.Ref{Type: typ, Key: key}, method, args, nil)
	}
	v, err := call(dso.TypeCounter, "a", "tally")
	require.NoError(t, err)
	require.Equal(t, int64(0), v, "a read of an absent object answers as a fresh one")
	_, err = call(dso.TypeCounter, "a", "bogus")
	require.ErrorIs(t, err, dso.ErrUnknownMethod)
	_, err = call(dso.TypeMap, "m", "get", "k")
	require.NoError(t, err)
	_, err = call(dso.TypeAtomicLong, "l", "set", "not a number")
	require.ErrorIs(t, err, dso.ErrBadArgs)
	require.Equal(t, 0, s.NumObjects(), "reads, unknown methods and failed calls create nothing")

	_, err = call(dso.TypeCounter, strings.Repeat("k", 65), "increment")
	require.ErrorIs(t, err, dso.ErrLimit)
	require.ErrorContains(t, err, "keys up to 64 bytes")

	_, err = call(dso.TypeCounter, "a", "increment")
	require.NoError(t, err)
	_, err = call(dso.TypeCounter, "b", "increment")
	require.NoError(t, err)
	_, err = call(dso.TypeCounter, "c", "increment")
	require.ErrorIs(t, err, dso.ErrLimit)
	require.ErrorContains(t, err, "holds 2 objects")
	v, err = call(dso.TypeCounter, "c", "tally")
	require.NoError(t, err, "reads still work at the limit")
	require.Equal(t, int64(0), v)
	v, err = call(dso.TypeCounter, "a", "increment")
	require.NoError(t, err, "existing objects still work at the limit")
	require.Equal(t, int64(2), v)
	require.Equal(t, 2, s.NumObjects())
}

// Reads of synchronization objects and matrices create nothing either; a
// parked read (a future's get) creates what it waits for.
func TestReadsOfOtherTypesCreateNothing(t *testing.T) {
	t.Parallel()
	cl, err := dsotest.StartCluster(1, dsotest.Options{})
	require.NoError(t, err)
	defer cl.Close()
	s := cl.Servers[0]
	ctx := context.Background()
	for _, c := range []struct {
		typ, method string
		ctor        []any
	}{
		{dso.TypeCyclicBarrier, "getParties", []any{int64(2)}},
		{dso.TypeSemaphore, "availablePermits", nil},
		{dso.TypeCountDownLatch, "getCount", []any{int64(1)}},
		{dso.TypeFuture, "isDone", nil},
		{dso.TypePipe, "size", nil},
		{dso.TypeMatrix, "rows", []any{int64(2), int64(2)}},
		{dso.TypeBlob, "size", nil},
	} {
		_, err := s.Invoke(ctx, dso.Ref{Type: c.typ, Key: "k"}, c.method, nil, c.ctor)
		require.NoError(t, err, c.typ)
	}
	require.Equal(t, 0, s.NumObjects())
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	s.Invoke(cctx, dso.Ref{Type: dso.TypeFuture, Key: "f"}, "get", nil, nil)
	require.Equal(t, 1, s.NumObjects(), "a parked get creates the future")
}

package client_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/stretchr/testify/require"
)

// call is a shorthand for untyped calls in table tests.
func call(t *testing.T, h dso.Handle, method string, args ...any) any {
	t.Helper()
	v, err := h.Call(testCtx(t), method, args...)
	require.NoError(t, err, "%v %s %v", h.Ref(), method, args)
	return v
}

func callErr(t *testing.T, h dso.Handle, target error, method string, args ...any) {
	t.Helper()
	_, err := h.Call(testCtx(t), method, args...)
	require.ErrorIs(t, err, target, "%v %s %v", h.Ref(), method, args)
}

func TestAtomicsFollowJavaSemantics(t *testing.T) {
	t.Parallel()
	_, c := startCluster(t, 1, dsotest.Options{})
	l := dso.NewHandle(c, dso.TypeAtomicLong, "l")
	require.Equal(t, int64(0), call(t, l, "get"))
	require.Equal(t, int64(0), call(t, l, "getAndAdd", int64(3)))
	require.Equal(t, int64(4), call(t, l, "incrementAndGet"))
	require.Equal(t, int64(4), call(t, l, "getAndDecrement"))
	require.Equal(t, int64(3), call(t, l, "getAndSet", int64(9)))
	require.Equal(t, false, call(t, l, "compareAndSet", int64(1), int64(2)))
	require.Equal(t, true, call(t, l, "compareAndSet", int64(9), int64(2)))
	require.Equal(t, int64(6), call(t, l, "multiplyAndGet", int64(3)))

	// Integer arithmetic that overflows fails (like Math.addExact) for
	// every numeric object, and leaves it unchanged.
	callErr(t, l, dso.ErrBadArgs, "set", 9.3e18) // out of range for int64
	call(t, l, "set", int64(math.MaxInt64))
	callErr(t, l, dso.ErrOverflow, "incrementAndGet")
	callErr(t, l, dso.ErrOverflow, "addAndGet", int64(1))
	callErr(t, l, dso.ErrOverflow, "multiplyAndGet", int64(2))
	require.Equal(t, int64(math.MaxInt64), call(t, l, "get"))
	call(t, l, "set", int64(math.MinInt64))
	callErr(t, l, dso.ErrOverflow, "decrementAndGet")
	callErr(t, l, dso.ErrOverflow, "multiplyAndGet", int64(-1))
	i := dso.NewHandle(c, dso.TypeAtomicInt, "i", int64(2147483647))
	callErr(t, i, dso.ErrOverflow, "incrementAndGet")
	require.Equal(t, int64(2147483647), call(t, i, "get"))
	callErr(t, i, dso.ErrBadArgs, "set", int64(1<<31))
	require.Equal(t, int64(-2147483648), call(t, i, "addAndGet", int64(-1<<32+1)+int64(1<<32-1)-int64(1<<31)-int64(1<<31-1)))

	b := dso.NewAtomicBoolean(c, "b")
	ok, err := b.CompareAndSet(testCtx(t), false, true)
	require.NoError(t, err)
	require.True(t, ok)
	v, err := b.Get(testCtx(t))
	require.NoError(t, err)
	require.True(t, v)

	r := dso.NewAtomicReference(c, "r")
	require.Equal(t, nil, call(t, r.Handle, "get"))
	require.Equal(t, true, call(t, r.Handle, "compareAndSet", nil, []byte("x")))
	require.Equal(t, []byte("x"), call(t, r.Handle, "get"))

	ba := dso.NewAtomicByteArray(c, "ba", 4)
	require.Equal(t, int64(4), call(t, ba.Handle, "length"))
	callErr(t, ba.Handle, dso.ErrOverflow, "addAndGet", int64(1), int64(128))
	require.Equal(t, int64(127), call(t, ba.Handle, "addAndGet", int64(1), int64(127)))
	callErr(t, ba.Handle, dso.ErrBadArgs, "set", int64(1), int64(200))
	callErr(t, ba.Handle, dso.ErrFailed, "get", int64(4))

	k := dso.NewCounter(c, "k")
	require.Equal(t, int64(5), call(t, k.Handle, "increment", int64(5)))
	require.Equal(t, int64(6), call(t, k.Handle, "increment"))
	require.Equal(t, int64(6), call(t, k.Handle, "tally"))
	call(t, k.Handle, "reset")
	require.Equal(t, int64(0), call(t, k.Handle, "tally"))
	require.Equal(t, int64(math.MaxInt64), call(t, k.Handle, "increment", int64(math.MaxInt64)))
	callErr(t, k.Handle, dso.ErrOverflow, "increment")
	require.Equal(t, int64(math.MaxInt64), call(t, k.Handle, "tally"))
	call(t, k.Handle, "reset")
	callErr(t, k.Handle, dso.ErrOverflow, "decrement", int64(math.MinInt64))

	m := dso.NewHandle(c, dso.TypeMap, "m")
	call(t, m, "put", "k", int64(math.MaxInt64))
	callErr(t, m, dso.ErrOverflow, "merge", "k", int64(1), "sum")
	callErr(t, m, dso.ErrOverflow, "mergeAll", map[string]any{"k": int64(1)}, "sum")
	require.Equal(t, int64(math.MaxInt64), call(t, m, "get", "k"))

	// Defect 9: a bogus combiner was accepted when the key was absent.
	callErr(t, m, dso.ErrBadArgs, "merge", "absent", int64(1), "bogus")
	require.Equal(t, nil, call(t, m, "get", "absent"))
}

func TestCollectionsSemantics(t *testing.T) {
	t.Parallel()
	_, c := startCluster(t, 1, dsotest.Options{})
	ctx := testCtx(t)

	m := dso.NewMap(c, "m")
	require.Equal(t, nil, call(t, m.Handle, "put", "a", int64(1)))
	require.Equal(t, int64(1), call(t, m.Handle, "put", "a", int64(2)))
	require.Equal(t, int64(5), call(t, m.Handle, "merge", "a", int64(3), "sum"))
	require.Equal(t, int64(5), call(t, m.Handle, "merge", "a", int64(1), "max"))
	require.Equal(t, int64(1), call(t, m.Handle, "merge", "a", int64(1), "min"))
	n, err := m.MergeAll(ctx, map[string]any{"a": int64(10), "b": 2.5}, "sum")
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	require.Equal(t, map[string]any{"a": int64(11), "b": 2.5}, call(t, m.Handle, "entries"))
	keys, err := m.KeySet(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, keys)
	callErr(t, m.Handle, dso.ErrBadArgs, "mergeAll", map[string]any{"a": "x"}, "sum")
	callErr(t, m.Handle, dso.ErrBadArgs, "merge", "a", int64(1), "avg")
	require.Equal(t, int64(11), call(t, m.Handle, "remove", "a"))
	require.Equal(t, int64(1), call(t, m.Handle, "size"))

	s := dso.NewSet(c, "s")
	require.Equal(t, true, call(t, s.Handle, "add", "x"))
	require.Equal(t, false, call(t, s.Handle, "add", "x"))
	require.Equal(t, true, call(t, s.Handle, "add", int64(1)))
	require.Equal(t, true, call(t, s.Handle, "contains", int64(1)))
	require.Equal(t, false, call(t, s.Handle, "contains", 1.5))
	require.Equal(t, true, call(t, s.Handle, "remove", "x"))
	require.Equal(t, int64(1), call(t, s.Handle, "size"))
	callErr(t, s.Handle, dso.ErrBadArgs, "add", []any{int64(1)})

	l := dso.NewList(c, "l")
	for _, v := range []any{"a", "b", "c"} {
		require.NoError(t, l.Add(ctx, v))
	}
	call(t, l.Handle, "addAt", int64(0), "z")
	require.Equal(t, []any{"z", "a", "b", "c"}, call(t, l.Handle, "toList"))
	require.Equal(t, "a", call(t, l.Handle, "removeAt", int64(1)))
	require.Equal(t, int64(2), call(t, l.Handle, "indexOf", "c"))
	require.Equal(t, []any{"b", "c"}, call(t, l.Handle, "subList", int64(1), int64(3)))
	callErr(t, l.Handle, dso.ErrFailed, "get", int64(3))

	tm := dso.NewTreeMap(c, "tm")
	for _, k := range []string{"d", "b", "a", "c"} {
		_, err := tm.Put(ctx, k, k+k)
		require.NoError(t, err)
	}
	first, ok, err := tm.FirstKey(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "a", first)
	require.Equal(t, "d", call(t, tm.Handle, "lastKey"))
	require.Equal(t, "c", call(t, tm.Handle, "floorKey", "cc"))
	require.Equal(t, "d", call(t, tm.Handle, "ceilingKey", "cc"))
	rng, err := tm.Range(ctx, "b", "d")
	require.NoError(t, err)
	require.Equal(t, [][2]any{{"b", "bb"}, {"c", "cc"}}, rng)

	mx := dso.NewMatrix(c, "mx", 2, 3)
	require.NoError(t, mx.Set(ctx, 1, 2, 4))
	v, err := mx.Add(ctx, 1, 2, 0.5)
	require.NoError(t, err)
	require.Equal(t, 4.5, v)
	require.NoError(t, mx.SetRow(ctx, 0, []float64{1, 2, 3}))
	arr, err := mx.ToArray(ctx)
	require.NoError(t, err)
	require.Equal(t, []float64{1, 2, 3, 0, 0, 4.5}, arr)
	callErr(t, mx.Handle, dso.ErrFailed, "get", int64(2), int64(0))

	bl := dso.NewBlob(c, "bl")
	require.NoError(t, bl.Write(ctx, []byte("hello")))
	sz, err := bl.Append(ctx, []byte(" world"))
	require.NoError(t, err)
	require.Equal(t, int64(11), sz)
	require.Equal(t, []byte("world"), call(t, bl.Handle, "readAt", int64(6), int64(100)))
}

func TestBadCallsGetClearErrors(t *testing.T) {
	t.Parallel()
	_, c := startCluster(t, 1, dsotest.Options{})
	callErr(t, dso.NewHandle(c, "NoSuchType", "x"), dso.ErrUnknownType, "get")
	callErr(t, dso.NewHandle(c, dso.TypeAtomicLong, "x"), dso.ErrUnknownMethod, "frobnicate")
	callErr(t, dso.NewHandle(c, dso.TypeAtomicLong, "x"), dso.ErrBadArgs, "addAndGet", "five")
	callErr(t, dso.NewHandle(c, dso.TypeAtomicLong, "x"), dso.ErrBadArgs, "addAndGet")
	callErr(t, dso.NewHandle(c, dso.TypeCyclicBarrier, "nobarrier"), dso.ErrBadArgs, "await")
	callErr(t, dso.NewHandle(c, dso.TypeAtomicLong, "y", "notanint"), dso.ErrBadArgs, "get")
	// The server still serves after all of these.
	require.Equal(t, int64(1), call(t, dso.NewHandle(c, dso.TypeAtomicLong, "x"), "incrementAndGet"))
}

func TestOversizedCallIsRefusedAndConnectionSurvives(t *testing.T) {
	t.Parallel()
	_, c := startCluster(t, 1, dsotest.Options{MaxFrame: 1024})
	b := dso.NewBlob(c, "big")
	err := b.Write(testCtx(t), make([]byte, 4096))
	require.ErrorIs(t, err, dso.ErrTooLarge)
	require.NoError(t, b.Write(testCtx(t), []byte("small")))
}

func TestSynchronizationObjects(t *testing.T) {
	t.Parallel()
	_, c := startCluster(t, 1, dsotest.Options{})
	ctx := testCtx(t)

	// Latch: three waiters released by three count-downs.
	l := dso.NewCountDownLatch(c, "latch", 3)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- l.Await(ctx) }()
	}
	for i := 0; i < 3; i++ {
		_, err := l.CountDown(ctx)
		require.NoError(t, err)
	}
	wg.Wait()
	for i := 0; i < 3; i++ {
		require.NoError(t, <-errs)
	}

	// Future: get waits for set; set only once.
	f := dso.NewFuture(c, "f")
	got := make(chan any, 1)
	go func() { v, _ := f.Get(ctx); got <- v }()
	ok, err := f.Set(ctx, "done")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "done", <-got)
	ok, err = f.Set(ctx, "again")
	require.NoError(t, err)
	require.True(t, !ok)

	// Rendezvous: two parties swap values.
	r := dso.NewRendezvous(c, "rv")
	other := make(chan any, 1)
	go func() { v, _ := r.Exchange(ctx, "from-a"); other <- v }()
	v, err := r.Exchange(ctx, "from-b")
	require.NoError(t, err)
	require.Equal(t, "from-a", v)
	require.Equal(t, "from-b", <-other)

	// Pipe: capacity 1, put blocks until a take; close drains then fails.
	p := dso.NewPipe(c, "p", 1)
	require.NoError(t, p.Put(ctx, int64(1)))
	putDone := make(chan error, 1)
	go func() { putDone <- p.Put(ctx, int64(2)) }()
	v, err = p.Take(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), v)
	require.NoError(t, <-putDone)
	require.NoError(t, p.Close(ctx))
	v, err = p.Take(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), v)
	_, err = p.Take(ctx)
	require.ErrorIs(t, err, dso.ErrClosed)
}

func TestParkedCallIsWithdrawnOnCancel(t *testing.T) {
	t.Parallel()
	_, c := startCluster(t, 1, dsotest.Options{})
	ctx := testCtx(t)
	b := dso.NewCyclicBarrier(c, "cancel-barrier", 2)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := b.Await(cctx); done <- err }()
	waitFor(t, func() bool { return call(t, b.Handle, "getNumberWaiting") == int64(1) })
	cancel()
	err := <-done
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, dso.ErrCanceled)
	waitFor(t, func() bool { return call(t, b.Handle, "getNumberWaiting") == int64(0) })

	// The barrier is consistent: two fresh parties cross generation 0.
	gens := make(chan int64, 2)
	for i := 0; i < 2; i++ {
		go func() { g, _ := b.Await(ctx); gens <- g }()
	}
	require.Equal(t, int64(0), <-gens)
	require.Equal(t, int64(0), <-gens)

	// A deadline withdraws a semaphore acquire; the permit goes to the next.
	s := dso.NewSemaphore(c, "cancel-sem", 0)
	dctx, dcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer dcancel()
	err = s.Acquire(dctx, 1)
	require.True(t, errors.Is(err, context.DeadlineExceeded) || errors.Is(err, dso.ErrTimeout), err)
	acq := make(chan error, 1)
	go func() { acq <- s.Acquire(ctx, 1) }()
	require.NoError(t, s.Release(ctx, 1))
	require.NoError(t, <-acq)
	n, err := s.AvailablePermits(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(0), n)
}

func TestDeleteReleasesParkedCallsAndRecreates(t *testing.T) {
	t.Parallel()
	_, c := startCluster(t, 1, dsotest.Options{})
	ctx := testCtx(t)
	b := dso.NewCyclicBarrier(c, "del", 2)
	done := make(chan error, 1)
	go func() { _, err := b.Await(ctx); done <- err }()
	waitFor(t, func() bool { return call(t, b.Handle, "getNumberWaiting") == int64(1) })
	ok, err := c.Delete(ctx, b.Ref())
	require.NoError(t, err)
	require.True(t, ok)
	require.ErrorIs(t, <-done, dso.ErrClosed)
	require.Equal(t, int64(0), call(t, b.Handle, "getNumberWaiting"))
	require.NoError(t, c.Clear(ctx))
	refs, err := c.List(ctx, "")
	require.NoError(t, err)
	require.Equal(t, 0, len(refs))
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

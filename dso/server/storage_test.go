package server_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/dso/server"
	"github.com/blossom-dso/blossom/pmem/snapstore"
)

// TestPmemStorageSurvivesRestart runs mutating calls on every persistent
// object type of a server with pmem storage, closes it, opens a new server
// on the same heap and requires every object to read back as it was; a
// deleted object stays deleted, and a barrier is refused.
func TestPmemStorageSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "node1.heap") // the name dsotest gives node 1
	open := func() *server.Server {
		s, err := server.New(server.Config{PmemPath: path, PmemSize: 16 << 20, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		return s
	}
	call := func(s *server.Server, typ, key, method string, args ...any) any {
		t.Helper()
		v, err := s.Invoke(ctx, dso.Ref{Type: typ, Key: key}, method, args, nil)
		require.NoError(t, err, "%s/%s.%s", typ, key, method)
		return v
	}
	// reads returns every object's observable state.
	reads := func(s *server.Server) map[string]any {
		return map[string]any{
			"long":    call(s, dso.TypeAtomicLong, "l", "get"),
			"int":     call(s, dso.TypeAtomicInt, "i", "get"),
			"bool":    call(s, dso.TypeAtomicBoolean, "b", "get"),
			"ref":     call(s, dso.TypeAtomicReference, "r", "get"),
			"bytes":   call(s, dso.TypeAtomicByteArray, "ba", "toArray"),
			"counter": call(s, dso.TypeCounter, "c", "tally"),
			"map":     call(s, dso.TypeMap, "m", "entries"),
			"set":     call(s, dso.TypeSet, "s", "members"),
			"list":    call(s, dso.TypeList, "li", "toList"),
			"tree":    call(s, dso.TypeTreeMap, "t", "keySet"),
			"tree.a":  call(s, dso.TypeTreeMap, "t", "get", "a"),
			"tfirst":  call(s, dso.TypeTreeMap, "t", "firstKey"),
		}
	}

	s := open()
	call(s, dso.TypeAtomicLong, "l", "addAndGet", int64(41))
	call(s, dso.TypeAtomicLong, "l", "incrementAndGet")
	call(s, dso.TypeAtomicInt, "i", "set", int64(-1<<31+1))
	call(s, dso.TypeAtomicInt, "i", "decrementAndGet") // the smallest int32
	call(s, dso.TypeAtomicBoolean, "b", "set", true)
	call(s, dso.TypeAtomicReference, "r", "set", map[string]any{"a": []any{int64(1), "x", 2.5}})
	_, err := s.Invoke(ctx, dso.Ref{Type: dso.TypeAtomicByteArray, Key: "ba"}, "set", []any{int64(2), int64(-7)}, []any{int64(4)})
	require.NoError(t, err)
	for range 10 {
		call(s, dso.TypeCounter, "c", "increment")
	}
	call(s, dso.TypeMap, "m", "put", "k1", "v1")
	call(s, dso.TypeMap, "m", "put", "k2", int64(2))
	call(s, dso.TypeSet, "s", "add", "x")
	call(s, dso.TypeSet, "s", "add", int64(3))
	call(s, dso.TypeList, "li", "add", "first")
	call(s, dso.TypeList, "li", "add", []byte{1, 2})
	call(s, dso.TypeTreeMap, "t", "put", "b", int64(2))
	call(s, dso.TypeTreeMap, "t", "put", "a", int64(1))
	call(s, dso.TypeCounter, "gone", "increment")
	_, err = s.Invoke(ctx, dso.Ref{Type: dso.TypeCyclicBarrier, Key: "bar"}, "await", nil, []any{int64(2)})
	require.ErrorContains(t, err, "cannot be kept in pmem storage")
	require.ErrorIs(t, err, dso.ErrFailed)
	want := reads(s)
	require.Equal(t, int64(10), want["counter"])
	require.Equal(t, int64(42), want["long"])
	require.Equal(t, int64(-1<<31), want["int"])
	nobj := s.NumObjects()
	require.NoError(t, s.Close())

	s = open()
	require.Equal(t, nobj, s.NumObjects())
	require.Equal(t, want, reads(s))
	require.NoError(t, s.Close())

	// Over the network: a one-node cluster on the same heap serves the
	// objects, and deleting one forgets it on the medium too.
	cl, err := dsotest.StartCluster(1, dsotest.Options{PmemDir: dir})
	require.NoError(t, err)
	c, err := cl.Dial(ctx)
	require.NoError(t, err)
	v, err := c.Call(ctx, dso.Ref{Type: dso.TypeCounter, Key: "c"}, "tally", nil, nil)
	require.NoError(t, err)
	require.Equal(t, int64(10), v)
	ok, err := c.Delete(ctx, dso.Ref{Type: dso.TypeCounter, Key: "gone"})
	require.NoError(t, err)
	require.True(t, ok)
	c.Close()
	require.NoError(t, cl.Close())

	s = open()
	defer s.Close()
	require.Equal(t, nobj-1, s.NumObjects())
	require.Equal(t, want, reads(s))
}

// TestSharedPmemHeap: a server given an open heap (Config.PmemHeap) keeps
// its objects there beside what else the heap holds (here a snapshot of
// pmem/snapstore), does not close the heap when it closes, and a server
// given the reopened heap restores the objects; OpenPmemHeap refuses a
// file that is not a heap, naming it.
func TestSharedPmemHeap(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "node.heap")
	h, err := server.OpenPmemHeap(path, 16<<20)
	require.NoError(t, err)
	snaps, err := snapstore.Open(h)
	require.NoError(t, err)
	require.NoError(t, snaps.Named("group-0").Save(5, []byte("replica state")))
	s, err := server.New(server.Config{PmemHeap: h, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	_, err = s.Invoke(ctx, dso.Ref{Type: dso.TypeAtomicLong, Key: "l"}, "addAndGet", []any{int64(7)}, nil)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	idx, data, err := snaps.Named("group-0").Load()
	require.NoError(t, err, "the heap is still open after the server closed")
	require.Equal(t, uint64(5), idx)
	require.Equal(t, []byte("replica state"), data)
	require.NoError(t, h.Close())

	h, err = server.OpenPmemHeap(path, 16<<20)
	require.NoError(t, err)
	defer h.Close()
	s, err = server.New(server.Config{PmemHeap: h, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer s.Close()
	v, err := s.Invoke(ctx, dso.Ref{Type: dso.TypeAtomicLong, Key: "l"}, "get", nil, nil)
	require.NoError(t, err)
	require.Equal(t, int64(7), v)
	snaps, err = snapstore.Open(h)
	require.NoError(t, err)
	idx, _, err = snaps.Named("group-0").Load()
	require.NoError(t, err)
	require.Equal(t, uint64(5), idx)

	foreign := filepath.Join(t.TempDir(), "foreign.heap")
	require.NoError(t, os.WriteFile(foreign, make([]byte, 1<<20), 0o644))
	_, err = server.OpenPmemHeap(foreign, 0)
	require.ErrorContains(t, err, foreign)
}

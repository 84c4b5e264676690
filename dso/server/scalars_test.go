package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/blossom-dso/blossom/dso"
	"github.com/stretchr/testify/require"
)

// TestScalarTableModel drives a scalar table and a map with the same
// random inserts, updates, finds and removes (keys from a small space, so
// that runs collide, shift back and compact) and checks after each step
// that they agree: presence, key, state and incarnation of each object,
// the count, the dead arena bytes, the listing and the compaction.
func TestScalarTableModel(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0))
		var tab scalarTable
		model := map[string]int64{}
		incs := map[string]uint32{}
		for step := 0; step < 5000; step++ {
			key := fmt.Sprintf("k%d%s", rng.IntN(300), strings.Repeat("x", rng.IntN(3)*40))
			h := hashKey(key)
			i := tab.find(key, h)
			v, ok := model[key]
			require.Equal(t, ok, i >= 0, "seed %d step %d: find %q", seed, step, key)
			if ok {
				require.Equal(t, v, tab.value(i), "seed %d step %d: value of %q", seed, step, key)
				require.Equal(t, key, string(tab.key(i)), "seed %d step %d", seed, step)
				require.Equal(t, incs[key], tab.inc(i), "seed %d step %d: incarnation of %q", seed, step, key)
			}
			switch op := rng.IntN(3); {
			case !ok && op < 2:
				v := rng.Int64()
				require.NoError(t, tab.insert(key, h, uint32(step+1), v))
				model[key], incs[key] = v, uint32(step+1)
			case ok && op == 0:
				tab.setValue(i, v+1)
				model[key]++
			case ok:
				tab.remove(i)
				delete(model, key)
			}
			require.Equal(t, len(model), tab.n, "seed %d step %d: count", seed, step)
			live := 0
			for i, off := range tab.index {
				if off != 0 {
					_, _, size := tab.record(i)
					live += size
				}
			}
			require.Equal(t, len(tab.arena)-live, tab.dead, "seed %d step %d: dead arena bytes", seed, step)
		}
		var keys []string
		tab.each(func(k string) { keys = append(keys, k) })
		var want []string
		for k := range model {
			want = append(want, k)
		}
		slices.Sort(keys)
		slices.Sort(want)
		require.Equal(t, want, keys, "seed %d: keys", seed)
		require.LessOrEqual(t, tab.dead*2, max(len(tab.arena), 4096*2), "seed %d: the arena was not compacted", seed)
	}
}

// TestScalarObjects checks the server's compact path for scalar types
// against the behaviour of any object: created by a write, not by a read
// or a failed call, deleted and made again with a new incarnation, listed,
// counted.
func TestScalarObjects(t *testing.T) {
	s, err := New(Config{})
	require.NoError(t, err)
	ctx := context.Background()
	tab := s.table(dso.TypeAtomicLong, true)
	require.NotNil(t, tab.scalars, "AtomicLong is kept in the scalar tables")
	require.Nil(t, s.table(dso.TypeAtomicReference, true).scalars, "AtomicReference is not a scalar")

	ref := func(i int) dso.Ref { return dso.Ref{Type: dso.TypeAtomicLong, Key: fmt.Sprint("n", i)} }
	v, err := s.Invoke(ctx, ref(0), "get", nil, nil)
	require.NoError(t, err)
	require.Equal(t, int64(0), v)
	_, err = s.Invoke(ctx, ref(0), "addAndGet", []any{"x"}, nil)
	require.ErrorIs(t, err, dso.ErrBadArgs)
	require.Equal(t, 0, s.NumObjects(), "a read or a failed call creates nothing")

	const n = 2000
	for i := range n {
		v, err := s.Invoke(ctx, ref(i), "addAndGet", []any{int64(i)}, []any{int64(10)})
		require.NoError(t, err)
		require.Equal(t, int64(10+i), v)
	}
	require.Equal(t, n, s.NumObjects())
	for i := range n {
		v, err := s.Invoke(ctx, ref(i), "incrementAndGet", nil, nil)
		require.NoError(t, err)
		require.Equal(t, int64(11+i), v, "object %d", i)
	}
	_, _, inc1, err := s.call(ref(7), "get", nil, nil, nil, RightAdmin, nil)
	require.NoError(t, err)
	for i := 0; i < n; i += 2 {
		require.True(t, s.delete(ref(i)), "delete %d", i)
	}
	require.False(t, s.delete(ref(0)), "deleted twice")
	require.Equal(t, n/2, s.NumObjects())
	require.Len(t, s.list(""), n/2)
	for i := range n {
		v, err := s.Invoke(ctx, ref(i), "get", nil, nil)
		require.NoError(t, err)
		want := int64(11 + i)
		if i%2 == 0 {
			want = 0
		}
		require.Equal(t, want, v, "object %d after deleting the even ones", i)
	}
	_, err = s.Invoke(ctx, ref(8), "set", []any{int64(5)}, nil)
	require.NoError(t, err)
	_, _, inc2, err := s.call(ref(7), "get", nil, nil, nil, RightAdmin, nil)
	require.NoError(t, err)
	require.Equal(t, inc1, inc2, "an object kept its incarnation")
	_, _, inc8, err := s.call(ref(8), "get", nil, nil, nil, RightAdmin, nil)
	require.NoError(t, err)
	require.NotZero(t, inc8)
	require.NotEqual(t, inc1, inc8)

	_, err = s.Invoke(ctx, ref(9), "addAndGet", []any{int64(1) << 62}, nil)
	require.NoError(t, err)
	_, err = s.Invoke(ctx, ref(9), "addAndGet", []any{int64(1) << 62}, nil)
	require.ErrorIs(t, err, dso.ErrOverflow)
	v, err = s.Invoke(ctx, ref(9), "get", nil, nil)
	require.NoError(t, err)
	require.Equal(t, int64(10+9+1)+int64(1)<<62, v, "a failed call leaves the state as it was")
}

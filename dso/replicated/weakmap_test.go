package replicated_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/replicated"
	"github.com/blossom-dso/blossom/protocols"
)

// TestWeakMapMixedCombinersConverge merges one key of a weak Map with
// the combiners sum, max and min (and a float max, and a mergeAll), in
// every order and with a restart from a snapshot at every point, and
// checks that every order gives the same table and the value of the
// rule: the sums first, then the maxes, then the mins.
func TestWeakMapMixedCombinersConverge(t *testing.T) {
	m := ref(dso.TypeMap, "m")
	e := everyOrderC(t, []cupd{
		{1, 1, m, nil, "merge", []any{"k", int64(5), "sum"}},
		{2, 1, m, nil, "merge", []any{"k", int64(3), "max"}},
		{3, 1, m, nil, "mergeAll", []any{map[string]any{"k": int64(4), "j": int64(-2)}, "sum"}},
		{4, 1, m, nil, "merge", []any{"k", int64(7), "min"}},
		{5, 1, m, nil, "merge", []any{"j", 1.5, "max"}},
	})
	// k: 5+4 = 9, max 3 → 9, min 7 → 7; j: -2, max 1.5 → 1.5.
	require.Equal(t, int64(7), e.value(m, "get", "k"))
	require.Equal(t, 1.5, e.value(m, "get", "j"))
	require.Equal(t, map[string]any{"k": int64(7), "j": 1.5}, e.value(m, "toMap"))
	require.Equal(t, []any{1.5, int64(7)}, e.value(m, "values"))
	require.Equal(t, int64(2), e.value(m, "size"))
}

// TestWeakMapReadsFollowTheRule checks each read of a weak Map against
// the rule on one replica, and that a merge answers the key's new value.
func TestWeakMapReadsFollowTheRule(t *testing.T) {
	m := ref(dso.TypeMap, "m")
	e := newEnv(t, replicated.Options{Level: degradable.Weak})
	require.Equal(t, int64(15), e.value(m, "merge", "a", int64(15), "min"))
	require.Equal(t, int64(10), e.value(m, "merge", "a", int64(10), "sum"), "the sums come first: min(10, 15)")
	require.Equal(t, int64(15), e.value(m, "merge", "a", int64(20), "max"), "then the maxes, then the mins: min(max(10, 20), 15)")
	require.Equal(t, int64(15), e.value(m, "getOrDefault", "a", int64(0)))
	require.Equal(t, int64(9), e.value(m, "getOrDefault", "b", int64(9)))
	require.Equal(t, true, e.value(m, "containsKey", "a"))
	require.Equal(t, []any{"a"}, e.value(m, "keySet"))
	require.Equal(t, map[string]any{"a": int64(15)}, e.value(m, "entries"))
	_, as := e.call(m, "merge", "a", int64(math.MaxInt64), "sum")
	_, err := result(t, as, as[0].ID)
	require.ErrorIs(t, err, dso.ErrOverflow)
	require.Equal(t, int64(15), e.value(m, "get", "a"), "a merge that fails changes nothing")
	for _, bad := range [][]any{
		{"merge", "a", "x", "max"},
		{"merge", "a", 0.5, "sum"},
		{"mergeAll", map[string]any{"a": int64(1), "b": "x"}, "min"},
		{"mergeAll", map[string]any{}, "replace"},
	} {
		_, as = e.call(m, bad[0].(string), bad[1:]...)
		_, err = result(t, as, as[0].ID)
		require.ErrorIs(t, err, dso.ErrBadArgs, "%v", bad)
	}
	require.Equal(t, map[string]any{"a": int64(15)}, e.value(m, "toMap"))
}

// legacyMapSnapshot is a snapshot of a table holding a library Map
// merged with max (an integer and a float value) and with sum: a weak
// table's map before weak maps kept their merges per combiner (a
// FuzzWeakRestore seed).
func legacyMapSnapshot() []byte {
	lib := replicated.New(nil, replicated.Options{})
	var rec recorder
	m := ref(dso.TypeMap, "m")
	for i, u := range []upd{
		{0, m, "mergeAll", []any{map[string]any{"i": int64(3), "f": 2.5}, "max"}},
		{0, m, "merge", []any{"s", int64(-4), "sum"}},
	} {
		p, err := replicated.EncodeCall(u.r, u.method, u.args, nil)
		if err != nil {
			panic(err)
		}
		lib.Apply(protocols.Command{ID: protocols.CommandID{Client: 9, Seq: uint64(i + 1)}, Payload: p}, &rec)
	}
	s, err := lib.Snapshot()
	if err != nil {
		panic(err)
	}
	return s
}

// TestWeakMapRestoresLibraryState restores a weak table from a snapshot
// whose Map holds the library's state, checks that every value reads as
// before, and that later merges follow the rule (an integer is the sum
// of the sum-merges, a float the max of the max-merges).
func TestWeakMapRestoresLibraryState(t *testing.T) {
	m := ref(dso.TypeMap, "m")
	e := newEnv(t, replicated.Options{Level: degradable.Weak})
	require.NoError(t, e.tab.Restore(legacyMapSnapshot()))
	require.Equal(t, map[string]any{"i": int64(3), "f": 2.5, "s": int64(-4)}, e.value(m, "toMap"))
	require.Equal(t, int64(5), e.value(m, "merge", "i", int64(2), "sum"))
	require.Equal(t, 2.5, e.value(m, "merge", "f", int64(1), "sum"), "max(1, 2.5)")
	require.Equal(t, int64(-4), e.value(m, "merge", "s", int64(-9), "max"))
	again := newEnv(t, replicated.Options{Level: degradable.Weak})
	s, err := e.tab.Snapshot()
	require.NoError(t, err)
	require.NoError(t, again.tab.Restore(s))
	require.Equal(t, e.value(m, "toMap"), again.value(m, "toMap"))
}

// TestWeakMapRefusesBadStates restores malformed weak map states: each
// fails with an error.
func TestWeakMapRefusesBadStates(t *testing.T) {
	m := ref(dso.TypeMap, "m")
	for _, st := range []any{
		map[string]any{"k": "x"},
		[]any{},
		[]any{"x"},
		[]any{map[string]any{"k": int64(1)}},
		[]any{map[string]any{"k": []any{nil, nil, nil}}},
		[]any{map[string]any{"k": []any{1.5, nil, nil}}},
		[]any{map[string]any{"k": []any{nil, "x", nil}}},
		[]any{map[string]any{"k": []any{nil, nil, true}}},
		[]any{map[string]any{"k": []any{int64(1), nil}}},
	} {
		b, err := dso.AppendCanonical(nil, st)
		require.NoError(t, err)
		require.Error(t, newEnv(t, replicated.Options{Level: degradable.Weak}).tab.Restore(snapshotOf([]snapObject{{m, 1, b}}, nil, nil)), "state %v", st)
	}
	good, err := dso.AppendCanonical(nil, []any{map[string]any{"k": []any{int64(1), nil, 0.5}}})
	require.NoError(t, err)
	e := newEnv(t, replicated.Options{Level: degradable.Weak})
	require.NoError(t, e.tab.Restore(snapshotOf([]snapObject{{m, 1, good}}, nil, nil)))
	require.Equal(t, 0.5, e.value(m, "get", "k"))
}

// TestWeakMapRandomMergesConverge applies random merges of integers and
// floats (NaN, -0 and 0 among them) with the three combiners on two keys
// to two replicas in two random orders, and checks that they hold the
// same table; it prints the seed of a failure.
func TestWeakMapRandomMergesConverge(t *testing.T) {
	m := ref(dso.TypeMap, "m")
	nums := []any{int64(0), int64(-3), int64(7), int64(1) << 53, int64(1)<<53 + 1, 0.0, math.Copysign(0, -1), 2.5, -1e300, math.NaN(), math.Inf(1)}
	combs := []string{"sum", "max", "min"}
	for seed := uint64(1); seed <= 300; seed++ {
		r := rand.New(rand.NewPCG(seed, 1))
		var us []cupd
		for i := range 2 + r.IntN(6) {
			comb := combs[r.IntN(3)]
			v := nums[r.IntN(len(nums))]
			if _, ok := v.(int64); comb == "sum" && !ok {
				v = int64(r.IntN(9) - 4)
			}
			k := string(rune('a' + r.IntN(2)))
			args := []any{k, v, comb}
			method := "merge"
			if r.IntN(3) == 0 {
				method, args = "mergeAll", []any{map[string]any{k: v}, comb}
			}
			us = append(us, cupd{uint64(i + 1), 1, m, nil, method, args})
		}
		var snaps [2][]byte
		for j := range snaps {
			e := newEnv(t, replicated.Options{Level: degradable.Weak})
			for _, i := range r.Perm(len(us)) {
				e.applyC(us[i])
			}
			var err error
			snaps[j], err = e.tab.Snapshot()
			require.NoError(t, err)
		}
		require.Equal(t, snaps[0], snaps[1], "seed %d: the merges %v in two orders gave two tables", seed, us)
	}
}

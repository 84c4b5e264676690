package replicated_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/replicated"
	"github.com/blossom-dso/blossom/internal/fuzzseed"
	"github.com/blossom-dso/blossom/protocols"
)

// upd is one update of a weak table, with its command's sequence number
// (the same at every replica).
type upd struct {
	seq    uint64
	r      dso.Ref
	method string
	args   []any
}

// permutations calls f with every order of n indexes.
func permutations(n int, f func([]int)) {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	var rec func(k int)
	rec = func(k int) {
		if k == n {
			f(p)
			return
		}
		for i := k; i < n; i++ {
			p[k], p[i] = p[i], p[k]
			rec(k + 1)
			p[k], p[i] = p[i], p[k]
		}
	}
	rec(0)
}

// everyOrder applies us to a fresh weak table in every order and checks
// that every order gives the same snapshot (the replicas converge); it
// returns a table that applied them (in the given order), for reads.
func everyOrder(t *testing.T, us []upd) *env {
	t.Helper()
	var first []byte
	permutations(len(us), func(p []int) {
		e := newEnv(t, replicated.Options{Level: degradable.Weak})
		for _, i := range p {
			e.callID(us[i].seq, us[i].r, us[i].method, us[i].args...)
		}
		s, err := e.tab.Snapshot()
		require.NoError(t, err)
		if first == nil {
			first = s
			return
		}
		require.Equal(t, first, s, "the order %v gave another table", p)
	})
	e := newEnv(t, replicated.Options{Level: degradable.Weak})
	for _, u := range us {
		e.callID(u.seq, u.r, u.method, u.args...)
	}
	return e
}

// tagOf returns the tag of the add of command seq (client 9).
func tagOf(seq uint64) string { return fmt.Sprintf("c:9.%x", seq) }

// TestWeakSetObservedRemove checks the weak table's observed-remove set:
// a remove removes the adds it names (observed), also when it executes
// before them, and an add it did not observe survives it (concurrent add
// wins); every order of the updates gives the same table.
func TestWeakSetObservedRemove(t *testing.T) {
	s := ref(dso.TypeSet, "s")
	e := newEnv(t, replicated.Options{Level: degradable.Weak})
	e.callID(1, s, "add", "x")
	require.Equal(t, []any{tagOf(1)}, e.value(s, "observe", "x"))
	require.Equal(t, []any{[]any{"x", []any{tagOf(1)}}}, e.value(s, "observeAll"))

	// x: added by 1 and 2, 3 removed what it observed (1's add), 4 added
	// x again concurrently; y: added by 5 and removed by 6 (observed).
	us := []upd{
		{1, s, "add", []any{"x"}},
		{2, s, "addAll", []any{[]any{"x", "y"}, "seg.1"}},
		{3, s, "remove", []any{"x", []any{tagOf(1), "u:seg.1"}}},
		{4, s, "add", []any{"x"}},
		{6, s, "removeAll", []any{[]any{[]any{"y", []any{"u:seg.1"}}}}},
		{7, s, "addAll", []any{[]any{"z"}, "seg.2", []any{[]any{"z", []any{"u:seg.2"}}, []any{"w", []any{"u:seg.0"}}}}}, // a batch: z added and removed, w's add removed
	}
	e = everyOrder(t, us)
	require.Equal(t, false, e.value(s, "contains", "z"), "a batch's remove of its own add")
	require.Equal(t, true, e.value(s, "contains", "x"), "the concurrent add of x lost to a remove that did not observe it")
	require.Equal(t, false, e.value(s, "contains", "y"), "a remove of y that observed its only add left it")
	require.Equal(t, []any{tagOf(4)}, e.value(s, "observe", "x"))
	require.Equal(t, []any{"x"}, e.value(s, "members"))

	// Without 4's add, x is gone in every order: the remove executed
	// before the adds it names leaves tombstones.
	e = everyOrder(t, us[:3])
	require.Equal(t, false, e.value(s, "contains", "x"))
	require.Equal(t, true, e.value(s, "contains", "y"))

	// A remove without its observed tags is refused, and so are bad tags.
	for _, args := range [][]any{{"x"}, {"x", "c:9.1"}, {"x", []any{"nope"}}, {[]any{"x"}, []any{}}} {
		id, as := e.call(s, "remove", args...)
		_, err := result(t, as, id)
		require.ErrorIs(t, err, dso.ErrBadArgs, "remove%v", args)
	}

	// The state survives a snapshot, tombstones included.
	snap, err := e.tab.Snapshot()
	require.NoError(t, err)
	r := newEnv(t, replicated.Options{Level: degradable.Weak})
	require.NoError(t, r.tab.Restore(snap))
	r.callID(1, s, "add", "x") // removed before: stays removed
	again, err := r.tab.Snapshot()
	require.NoError(t, err)
	require.Equal(t, snap, again)
}

// TestWeakCounterFlushOnce checks that a segment's flush counts once
// however many times it is sent, in any order of the segments' flushes.
func TestWeakCounterFlushOnce(t *testing.T) {
	c := ref(dso.TypeCounter, "c")
	us := []upd{
		{1, c, "flush", []any{"a", int64(1), int64(5)}},
		{2, c, "flush", []any{"a", int64(1), int64(5)}}, // sent again
		{3, c, "flush", []any{"a", int64(3), int64(7)}}, // before 2 here
		{4, c, "flush", []any{"a", int64(2), int64(11)}},
		{5, c, "flush", []any{"b", int64(1), int64(100)}},
		{6, c, "increment", []any{int64(1000)}},
	}
	e := everyOrder(t, us)
	require.Equal(t, int64(1123), e.value(c, "tally"))
	require.Equal(t, int64(1123), e.value(c, "flush", "a", int64(2), int64(11)), "a flush applied before counted again")
	for _, args := range [][]any{{"a", int64(0), int64(1)}, {"a", int64(1)}, {int64(1), int64(1), int64(1)}} {
		id, as := e.call(c, "flush", args...)
		_, err := result(t, as, id)
		require.ErrorIs(t, err, dso.ErrBadArgs, "flush%v", args)
	}
	snap, err := e.tab.Snapshot()
	require.NoError(t, err)
	r := newEnv(t, replicated.Options{Level: degradable.Weak})
	require.NoError(t, r.tab.Restore(snap))
	require.Equal(t, int64(1123), r.value(c, "flush", "a", int64(3), int64(7)), "a restored table forgot the flushes it applied")
}

// TestWeakQueue checks the weak table's queue (a List): per-writer items
// in stamp order, removals that name their item, in any order.
func TestWeakQueue(t *testing.T) {
	q := ref(dso.TypeList, "q")
	item := func(w string, n, stamp int64, v any) []any { return []any{w, n, stamp, v} }
	us := []upd{
		{1, q, "add", []any{"a", int64(30)}},
		{2, q, "addAll", []any{[]any{[]any{int64(1), int64(10), "b"}, []any{int64(2), int64(40), "c"}}, "w"}},
		{3, q, "removeAt", []any{int64(0), item("u:w", 1, 10, "b")}},
		{4, q, "add", []any{"d", int64(20)}},
		{5, q, "removeAll", []any{[]any{[]any{"c:9", int64(4)}}}},
		{6, q, "addAll", []any{[]any{[]any{int64(3), int64(50), "e"}}, "w", []any{[]any{"u:w", int64(3)}}}}, // a batch: e added and removed
	}
	e := everyOrder(t, us)
	require.Equal(t, []any{"a", "c"}, e.value(q, "toList"))
	require.Equal(t, item("c:9", 1, 30, "a"), e.value(q, "observe"))
	require.Equal(t, int64(2), e.value(q, "size"))
	require.Equal(t, "a", e.value(q, "removeAt", int64(0), item("c:9", 1, 30, "a")))
	require.Equal(t, []any{"c"}, e.value(q, "toList"))
	for _, args := range [][]any{{int64(0)}, {int64(1), item("c:9", 1, 30, "a")}, {int64(0), []any{"c:9", int64(1)}}} {
		id, as := e.call(q, "removeAt", args...)
		_, err := result(t, as, id)
		require.ErrorIs(t, err, dso.ErrBadArgs, "removeAt%v", args)
	}
	snap, err := e.tab.Snapshot()
	require.NoError(t, err)
	r := newEnv(t, replicated.Options{Level: degradable.Weak})
	require.NoError(t, r.tab.Restore(snap))
	r.callID(3, q, "removeAt", int64(0), item("u:w", 1, 10, "b"))
	r.callID(2, q, "addAll", []any{[]any{int64(1), int64(10), "b"}}, "w") // removed: stays removed
	again, err := r.tab.Snapshot()
	require.NoError(t, err)
	require.Equal(t, snap, again)
}

// weakPopulated is a weak table holding a set with a tombstone, a queue
// with a removed item and a counter with segments' flushes.
func weakPopulated() *replicated.Table {
	e := newEnv(nil, replicated.Options{Level: degradable.Weak})
	s, q, c := ref(dso.TypeSet, "s"), ref(dso.TypeList, "q"), ref(dso.TypeCounter, "c")
	for i, u := range []upd{
		{0, s, "addAll", []any{[]any{"x", int64(1), []byte{2}}}},
		{0, s, "remove", []any{int64(1), []any{tagOf(1)}}},
		{0, s, "add", []any{"x", "seg.1"}},
		{0, q, "add", []any{"a", int64(5)}},
		{0, q, "addAll", []any{[]any{[]any{int64(1), int64(3), "b"}, []any{int64(2), int64(4), "c"}}, "w"}},
		{0, q, "removeAll", []any{[]any{[]any{"u:w", int64(2)}, []any{"u:w", int64(4)}}}},
		{0, c, "flush", []any{"a", int64(2), int64(3)}},
		{0, c, "flush", []any{"b", int64(1), int64(4)}},
		{0, c, "increment", nil},
	} {
		p, err := replicated.EncodeCall(u.r, u.method, u.args, nil)
		if err != nil {
			panic(err)
		}
		e.tab.Apply(protocols.Command{ID: protocols.CommandID{Client: 9, Seq: uint64(i + 1)}, Payload: p}, &e.rec)
	}
	return e.tab
}

// weakRestoreSeeds are snapshots of weak tables for FuzzWeakRestore.
func weakRestoreSeeds() [][]byte {
	full, err := weakPopulated().Snapshot()
	if err != nil {
		panic(err)
	}
	lib := replicated.New(nil, replicated.Options{}) // library states: legacy weak sets and counters
	var rec recorder
	for i, u := range []upd{{0, ref(dso.TypeSet, "s"), "addAll", []any{[]any{"x", "y"}}}, {0, ref(dso.TypeCounter, "c"), "increment", []any{int64(4)}}} {
		p, _ := replicated.EncodeCall(u.r, u.method, u.args, nil)
		lib.Apply(protocols.Command{ID: protocols.CommandID{Client: 9, Seq: uint64(i + 1)}, Payload: p}, &rec)
	}
	legacy, err := lib.Snapshot()
	if err != nil {
		panic(err)
	}
	return [][]byte{full, full[:len(full)*2/3], legacy, weakCtorSnapshot(), legacyMapSnapshot()}
}

// TestWeakFuzzSeeds keeps testdata/fuzz/FuzzWeakRestore in step with
// weakRestoreSeeds, and checks that a weak table restores a library
// table's set and counter (a weak table's state before sets removed).
func TestWeakFuzzSeeds(t *testing.T) {
	fuzzseed.Check(t, "FuzzWeakRestore", weakRestoreSeeds())
	e := newEnv(t, replicated.Options{Level: degradable.Weak})
	require.NoError(t, e.tab.Restore(weakRestoreSeeds()[2]))
	require.Equal(t, []any{"x", "y"}, e.value(ref(dso.TypeSet, "s"), "members"))
	require.Equal(t, []any{"u:legacy"}, e.value(ref(dso.TypeSet, "s"), "observe", "x"))
	require.Equal(t, int64(4), e.value(ref(dso.TypeCounter, "c"), "tally"))
}

// FuzzWeakRestore restores arbitrary bytes into a weak table: Restore
// must not panic; it fails and leaves the table as it was, or succeeds
// with a table whose snapshot restores to the same bytes.
func FuzzWeakRestore(f *testing.F) {
	for _, s := range weakRestoreSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, snap []byte) {
		checkRestore(t, weakPopulated(), snap, replicated.Options{Level: degradable.Weak})
	})
}

package replicated_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/replicated"
	"github.com/blossom-dso/blossom/protocols"
)

// TestDeclareBindsLevel checks the level bindings of the linearizable
// table: a declare binds a name once (again at the same level is fine),
// a declare at another level or of a name a linearizable object holds
// fails naming both levels, a linearizable call on a bound name fails
// naming its level and creates nothing, and the bindings survive a
// snapshot and restore (version 3) while a table without them still
// writes version 2.
func TestDeclareBindsLevel(t *testing.T) {
	e := newEnv(t, replicated.Options{})
	empty, err := e.tab.Snapshot()
	require.NoError(t, err)
	require.Equal(t, byte(2), empty[4], "a table without bindings writes version 2")

	c := ref(dso.TypeCounter, "c")
	declare := func(r dso.Ref, l degradable.Level) (any, error) {
		id, as := e.apply(replicated.EncodeDeclare(r, l), replicated.Key(r))
		return result(t, as, id)
	}
	v, err := declare(c, degradable.Weak)
	require.NoError(t, err)
	require.Equal(t, true, v)
	_, err = declare(c, degradable.Weak)
	require.NoError(t, err, "declaring again at the same level")
	_, err = declare(c, degradable.Sequential)
	require.ErrorIs(t, err, dso.ErrBadArgs)
	require.ErrorContains(t, err, "created at the weak level")

	id, as := e.call(c, "increment")
	_, err = result(t, as, id)
	require.ErrorIs(t, err, dso.ErrBadArgs)
	require.ErrorContains(t, err, "cannot be used at the linearizable level")
	_, ok := e.tab.Get(c)
	require.False(t, ok, "the refused call created an object")

	a := ref(dso.TypeAtomicLong, "a")
	require.Equal(t, int64(1), e.value(a, "incrementAndGet"))
	_, err = declare(a, degradable.Sequential)
	require.ErrorContains(t, err, "created at the linearizable level")
	l, ok := e.tab.LevelOf(a)
	require.True(t, ok)
	require.Equal(t, degradable.Linearizable, l)

	snap, err := e.tab.Snapshot()
	require.NoError(t, err)
	require.Equal(t, byte(3), snap[4])
	other := replicated.New(nil, replicated.Options{})
	require.NoError(t, other.Restore(snap))
	l, ok = other.LevelOf(c)
	require.True(t, ok)
	require.Equal(t, degradable.Weak, l)
	again, err := other.Snapshot()
	require.NoError(t, err)
	require.Equal(t, snap, again)

	// A declare of an invalid level does not decode.
	bad := replicated.EncodeDeclare(c, degradable.Linearizable)
	id, as = e.apply(bad, replicated.Key(c))
	_, err = result(t, as, id)
	require.ErrorIs(t, err, dso.ErrMalformed)
	// A declare sent to a table of another level is refused.
	w := newEnv(t, replicated.Options{Level: degradable.Weak})
	id, as = w.apply(replicated.EncodeDeclare(c, degradable.Weak), replicated.Key(c))
	_, err = result(t, as, id)
	require.ErrorIs(t, err, dso.ErrBadArgs)
}

// TestWeakTableOffersCommutingMethods checks that a weak table runs the
// updates that commute and the reads, and refuses the others naming the
// level: so that two tables applying the same updates in different orders
// end equal, which the second half checks.
func TestWeakTableOffersCommutingMethods(t *testing.T) {
	e := newEnv(t, replicated.Options{Level: degradable.Weak})
	refuse := func(r dso.Ref, method string, args ...any) {
		t.Helper()
		id, as := e.call(r, method, args...)
		_, err := result(t, as, id)
		require.ErrorIs(t, err, dso.ErrBadArgs, "%s.%s", r, method)
		require.ErrorContains(t, err, "weak level")
	}
	a, c, s, m := ref(dso.TypeAtomicLong, "a"), ref(dso.TypeCounter, "c"), ref(dso.TypeSet, "s"), ref(dso.TypeMap, "m")
	require.Equal(t, int64(5), e.value(a, "addAndGet", int64(5)))
	require.Equal(t, int64(1), e.value(c, "increment"))
	require.Equal(t, true, e.value(s, "add", "x"))
	require.Equal(t, int64(2), e.value(s, "addAll", []any{"a", "x", "b"}))
	require.Equal(t, int64(3), e.value(s, "size"))
	id, as := e.call(s, "addAll", []any{"c", []any{int64(1)}})
	_, err := result(t, as, id)
	require.ErrorIs(t, err, dso.ErrBadArgs, "addAll of a non-scalar")
	require.Equal(t, int64(3), e.value(s, "size"), "a refused addAll added an element")
	require.Equal(t, int64(3), e.value(m, "merge", "k", int64(3)))
	require.Equal(t, int64(3), e.value(m, "merge", "k", int64(2), "max"))
	refuse(a, "compareAndSet", int64(5), int64(6))
	refuse(a, "set", int64(1))
	refuse(c, "reset")
	refuse(s, "remove", "x")
	refuse(m, "put", "k", int64(1))
	refuse(m, "merge", "k", int64(1), "replace")
	refuse(m, "merge", "k", 1.5)
	refuse(m, "mergeAll", map[string]any{"a": int64(1), "b": 2.5})
	refuse(ref(dso.TypeList, "l"), "set", int64(0), "x")
	refuse(ref(dso.TypeList, "l"), "removeAt", int64(1))
	refuse(ref(dso.TypeCyclicBarrier, "b"), "await")

	// Two tables, the same updates of three writers in two orders.
	updates := []struct {
		r      dso.Ref
		method string
		args   []any
	}{
		{a, "addAndGet", []any{int64(4)}}, {c, "decrement", nil}, {s, "add", []any{"y"}},
		{m, "merge", []any{"k", int64(9), "min"}}, {m, "mergeAll", []any{map[string]any{"j": int64(2)}}},
		{a, "getAndIncrement", nil}, {s, "add", []any{"x"}}, {m, "merge", []any{"j", int64(5)}},
		{s, "addAll", []any{[]any{"x", "z"}}},
	}
	// Every replica executes an update under the same command id.
	x, y := newEnv(t, replicated.Options{Level: degradable.Weak}), newEnv(t, replicated.Options{Level: degradable.Weak})
	for i := range updates {
		u, w := updates[i], updates[len(updates)-1-i]
		x.callID(uint64(i+1), u.r, u.method, u.args...)
		y.callID(uint64(len(updates)-i), w.r, w.method, w.args...)
	}
	sx, err := x.tab.Snapshot()
	require.NoError(t, err)
	sy, err := y.tab.Snapshot()
	require.NoError(t, err)
	require.Equal(t, sx, sy, "the same commuting updates in another order gave another table")
}

// TestReadOnlyCommands checks the read-only predicate given to the weaker
// strategies: reads of the object library are read-only, updates, other
// kinds and garbage are not.
func TestReadOnlyCommands(t *testing.T) {
	ro := replicated.ReadOnlyCommands(nil)
	cmd := func(r dso.Ref, method string) protocols.Command {
		p, err := replicated.EncodeCall(r, method, nil, nil)
		require.NoError(t, err)
		return protocols.Command{Payload: p}
	}
	require.True(t, ro(cmd(ref(dso.TypeCounter, "c"), "tally")))
	require.True(t, ro(cmd(ref(dso.TypeSet, "s"), "contains")))
	require.False(t, ro(cmd(ref(dso.TypeCounter, "c"), "increment")))
	require.False(t, ro(cmd(ref("NoSuchType", "x"), "get")))
	require.False(t, ro(protocols.Command{Payload: replicated.EncodeDelete(ref(dso.TypeSet, "s"))}))
	require.False(t, ro(protocols.Command{Payload: []byte{1, 200}}))
	require.True(t, ro(cmd(ref(dso.TypeCounter, "c"), "tally")), "cached answer")
}

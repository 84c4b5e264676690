package replicated_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/replicated"
	"github.com/blossom-dso/blossom/protocols"
)

// cupd is an update of a weak table with constructor arguments: the
// command seq of client c.
type cupd struct {
	c, seq uint64
	r      dso.Ref
	ctor   []any
	method string
	args   []any
}

// applyC applies u to e's table.
func (e *env) applyC(u cupd) {
	e.t.Helper()
	p, err := replicated.EncodeCall(u.r, u.method, u.args, u.ctor)
	require.NoError(e.t, err)
	e.tab.Apply(protocols.Command{ID: protocols.CommandID{Client: u.c, Seq: u.seq}, Keys: []string{replicated.Key(u.r)}, Payload: p}, &e.rec)
}

// everyOrderC applies us to a fresh weak table in every order, and in
// every order with a snapshot restored into a new table after each
// prefix, and checks that each gives the same snapshot; it returns a
// table that applied them in the given order.
func everyOrderC(t *testing.T, us []cupd) *env {
	t.Helper()
	var first []byte
	permutations(len(us), func(p []int) {
		for cut := 0; cut <= len(p); cut++ {
			e := newEnv(t, replicated.Options{Level: degradable.Weak})
			for k, i := range p {
				if k == cut && cut > 0 { // a replica restarted from its snapshot
					s, err := e.tab.Snapshot()
					require.NoError(t, err)
					e = newEnv(t, replicated.Options{Level: degradable.Weak})
					require.NoError(t, e.tab.Restore(s))
				}
				e.applyC(us[i])
			}
			s, err := e.tab.Snapshot()
			require.NoError(t, err)
			if first == nil {
				first = s
				continue
			}
			require.Equal(t, first, s, "the order %v (restarted from a snapshot before update %d; 0: never) gave another table", p, cut)
		}
	})
	e := newEnv(t, replicated.Options{Level: degradable.Weak})
	for _, u := range us {
		e.applyC(u)
	}
	return e
}

// TestWeakConcurrentCreationsConverge creates one weak object from
// several clients at once, each with its own constructor arguments (or
// none, or bad ones, or with a call that fails), and checks that every order of their updates gives
// every replica the same table: the initial value is the least
// constructor arguments' (by their canonical encoding), whichever
// creation a replica executed first.
func TestWeakConcurrentCreationsConverge(t *testing.T) {
	for _, tc := range []struct {
		typ, add, read string
		want           int64
	}{
		{dso.TypeAtomicLong, "addAndGet", "get", 10 + 1 + 2 + 4},
		{dso.TypeAtomicInt, "getAndAdd", "get", 10 + 1 + 2 + 4},
		{dso.TypeCounter, "increment", "tally", 10 + 1 + 2 + 4},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			r := ref(tc.typ, "k")
			e := everyOrderC(t, []cupd{
				{1, 1, r, []any{int64(20)}, tc.add, []any{int64(1)}},
				{2, 1, r, []any{int64(10)}, tc.add, []any{int64(2)}},
				{3, 1, r, nil, tc.add, []any{int64(4)}},
				{4, 1, r, []any{"not a number"}, tc.add, []any{int64(8)}}, // fails everywhere
				{5, 1, r, []any{int64(1)}, tc.add, []any{"x"}},            // would win, but fails everywhere
			})
			require.Equal(t, tc.want, e.value(r, tc.read))
		})
	}
	// A weak counter's segment flushes count with the initial value too.
	c := ref(dso.TypeCounter, "f")
	e := everyOrderC(t, []cupd{
		{1, 1, c, []any{int64(7)}, "flush", []any{"s", int64(1), int64(3)}},
		{2, 1, c, []any{int64(5)}, "flush", []any{"t", int64(1), int64(4)}},
		{3, 1, c, nil, "flush", []any{"s", int64(1), int64(3)}}, // sent again: counts once
	})
	require.Equal(t, int64(5+3+4), e.value(c, "tally"))
}

// weakCtorSnapshot is the snapshot of a weak table whose AtomicLong,
// AtomicInt and Counter had updates with constructor arguments, and an
// AtomicLong that had none (a FuzzWeakRestore seed).
func weakCtorSnapshot() []byte {
	e := newEnv(nil, replicated.Options{Level: degradable.Weak})
	for i, u := range []cupd{
		{1, 1, ref(dso.TypeAtomicLong, "l"), []any{int64(-4)}, "addAndGet", []any{int64(3)}},
		{1, 2, ref(dso.TypeAtomicInt, "i"), []any{int64(9)}, "getAndAdd", []any{int64(2)}},
		{1, 3, ref(dso.TypeCounter, "c"), []any{int64(6)}, "flush", []any{"s", int64(1), int64(5)}},
		{1, 4, ref(dso.TypeAtomicLong, "n"), nil, "incrementAndGet", nil},
	} {
		p, err := replicated.EncodeCall(u.r, u.method, u.args, u.ctor)
		if err != nil {
			panic(err)
		}
		e.tab.Apply(protocols.Command{ID: protocols.CommandID{Client: 9, Seq: uint64(i + 1)}, Payload: p}, &e.rec)
	}
	s, err := e.tab.Snapshot()
	if err != nil {
		panic(err)
	}
	return s
}

package check

import (
	"errors"
	"testing"
)

// These tests plant one fault per condition in a small history and check
// that the checker of each level reports it (ErrViolation), and that a
// history keeping the level passes. Several histories pass a weaker level
// and fail a stronger one, which shows the levels apart.

func wantOK(t *testing.T, name string, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: want a pass, got %v", name, err)
	}
}

func wantViolation(t *testing.T, name string, err error) {
	t.Helper()
	if !errors.Is(err, ErrViolation) {
		t.Errorf("%s: want a violation, got %v", name, err)
	} else {
		t.Logf("%s: caught: %v", name, err)
	}
}

func wantUndecided(t *testing.T, name string, err error) {
	t.Helper()
	if !errors.Is(err, ErrUndecided) {
		t.Errorf("%s: want undecided, got %v", name, err)
	}
}

func add(c int, call, ret, d int64) CounterOp {
	return CounterOp{Client: c, Call: call, Return: ret, Delta: d}
}

func read(c int, call, ret, v int64) CounterOp {
	return CounterOp{Client: c, Call: call, Return: ret, Read: true, Value: v}
}

// checkCase is one planted history: the levels it must pass and fail, as
// letters: l(inearizable), s(equential), w(eak).
type checkCase[O, F any] struct {
	name       string
	ops        []O
	final      F
	pass, fail string
}

// runCases runs every case against the checkers of one type.
func runCases[O, F any](t *testing.T, lin, seq, weak func([]O, F) error, cases []checkCase[O, F]) {
	t.Helper()
	checkers := map[rune]struct {
		name string
		f    func([]O, F) error
	}{'l': {"linearizable", lin}, 's': {"sequential", seq}, 'w': {"weak", weak}}
	for _, c := range cases {
		if len(c.pass)+len(c.fail) == 0 {
			t.Fatalf("%s: checks nothing", c.name)
		}
		for _, l := range c.pass {
			wantOK(t, c.name+"/"+checkers[l].name, checkers[l].f(c.ops, c.final))
		}
		for _, l := range c.fail {
			wantViolation(t, c.name+"/"+checkers[l].name, checkers[l].f(c.ops, c.final))
		}
	}
}

func TestCounterCheckers(t *testing.T) {
	type cc = checkCase[CounterOp, []int64]
	runCases(t, CounterLinearizable, CounterSequential, CounterWeak, []cc{
		{"fresh read", []CounterOp{add(0, 0, 1, 1), read(1, 2, 3, 1)}, []int64{1, 1}, "lsw", ""},
		// B reads 0 after A's add returned: stale, so not linearizable, but
		// an order puts B's read first.
		{"stale read", []CounterOp{add(0, 0, 1, 1), read(1, 2, 3, 0)}, []int64{1, 1}, "sw", "l"},
		// Each client sees only its own add: no single order explains both.
		{"private views", []CounterOp{add(0, 0, 1, 1), read(0, 2, 3, 1), add(1, 0, 1, 1), read(1, 2, 3, 1)}, []int64{2, 2}, "w", "ls"},
		{"read misses own add", []CounterOp{add(0, 0, 1, 1), read(0, 2, 3, 0)}, []int64{1}, "", "lsw"},
		{"reads go back", []CounterOp{add(1, 0, 1, 1), read(0, 2, 3, 1), read(0, 4, 5, 0)}, []int64{1, 1}, "", "lsw"},
		{"read of an add not yet invoked", []CounterOp{read(0, 0, 1, 1), add(1, 2, 3, 1)}, []int64{1, 1}, "s", "lw"},
		{"read sums no set of adds", []CounterOp{add(0, 0, 1, 1), read(1, 2, 3, 5)}, []int64{1, 1}, "", "lsw"},
		{"finals diverge", []CounterOp{add(0, 0, 1, 1), add(1, 0, 1, 1)}, []int64{2, 1}, "", "lsw"},
		{"lost update", []CounterOp{add(0, 0, 1, 1), add(1, 0, 1, 1)}, []int64{1, 1}, "", "lsw"},
		// Mixed deltas take the exact search at the sequential level.
		{"mixed deltas", []CounterOp{add(0, 0, 1, 5), add(1, 0, 1, -2), read(0, 2, 3, 3), read(1, 2, 3, -2)}, []int64{3, 3}, "sw", "l"},
		{"mixed deltas, own add missed", []CounterOp{add(0, 0, 1, 5), add(1, 0, 1, -2), read(0, 2, 3, -2)}, []int64{3, 3}, "", "lsw"},
		// A decrement seen, then unseen: the difference is no set of new adds.
		{"decrement unseen again", []CounterOp{add(1, 0, 1, -1), read(0, 4, 5, -1), read(0, 6, 7, 0)}, []int64{-1, -1}, "", "lsw"},
		// A limit of the weak check: here the reads at -1 then 0 would need the
		// -1 unseen again, but bounds alone cannot tell (1 = -1 + 2 fits).
		{"decrement unseen again, masked", []CounterOp{add(1, 0, 1, -1), add(1, 2, 3, 2), read(0, 4, 5, -1), read(0, 6, 7, 0)}, []int64{1, 1}, "w", "ls"},
		// EDF: the reads pin both adds to the first position.
		{"two adds, each first", []CounterOp{add(0, 0, 1, 1), read(0, 2, 3, 1), add(1, 0, 1, 1), read(1, 4, 5, 1), read(1, 6, 7, 2)}, []int64{2, 2}, "w", "ls"},
	})
}

func w(c int, call, ret int64, v int) RegisterOp[int] {
	return RegisterOp[int]{Client: c, Call: call, Return: ret, Write: true, Value: v}
}

func r(c int, call, ret int64, v int) RegisterOp[int] {
	return RegisterOp[int]{Client: c, Call: call, Return: ret, Value: v}
}

func TestRegisterCheckers(t *testing.T) {
	type rc = checkCase[RegisterOp[int], []int]
	runCases(t, RegisterLinearizable[int], RegisterSequential[int], RegisterWeak[int], []rc{
		{"fresh read", []RegisterOp[int]{w(0, 0, 1, 1), r(1, 2, 3, 1)}, []int{1, 1}, "lsw", ""},
		{"stale read", []RegisterOp[int]{w(0, 0, 1, 1), r(1, 2, 3, 0)}, []int{1, 1}, "sw", "l"},
		{"read misses own write", []RegisterOp[int]{w(0, 0, 1, 1), r(0, 2, 3, 0)}, []int{1}, "", "lsw"},
		{"reads go back", []RegisterOp[int]{w(1, 0, 1, 1), w(1, 2, 3, 2), r(0, 4, 5, 2), r(0, 6, 7, 1)}, []int{2, 2}, "", "lsw"},
		// Each client reads the other's write after its own: the write order
		// would need 1 < 2 < 1.
		{"crossed reads", []RegisterOp[int]{w(0, 0, 1, 1), r(0, 2, 3, 2), w(1, 0, 1, 2), r(1, 2, 3, 1)}, []int{2, 2}, "", "lsw"},
		// Sequential consistency ignores real time; weak validity does not.
		{"read from the future", []RegisterOp[int]{r(0, 0, 1, 1), w(1, 2, 3, 1)}, []int{1, 1}, "s", "lw"},
		{"read of a value nobody wrote", []RegisterOp[int]{w(0, 0, 1, 1), r(1, 2, 3, 7)}, []int{1, 1}, "", "lsw"},
		// Client 1 wrote 2 after reading 1, so 2 is newer; the finals read 1.
		{"final not the last write", []RegisterOp[int]{w(0, 0, 1, 1), r(1, 2, 3, 1), w(1, 4, 5, 2)}, []int{1, 1}, "", "lsw"},
		{"finals diverge", []RegisterOp[int]{w(0, 0, 1, 1), w(1, 0, 1, 2)}, []int{1, 2}, "", "lsw"},
	})
	for _, f := range []func([]RegisterOp[int], []int) error{RegisterSequential[int], RegisterWeak[int]} {
		wantUndecided(t, "duplicate writes", f([]RegisterOp[int]{w(0, 0, 1, 1), w(1, 0, 1, 1)}, []int{1, 1}))
		wantUndecided(t, "zero written", f([]RegisterOp[int]{w(0, 0, 1, 0)}, []int{0}))
	}
}

func sa(c int, call, ret int64, e string) SetOp[string] {
	return SetOp[string]{Client: c, Call: call, Return: ret, Kind: SetAdd, Elem: e}
}

func sr(c int, call, ret int64, e string) SetOp[string] {
	return SetOp[string]{Client: c, Call: call, Return: ret, Kind: SetRemove, Elem: e}
}

func sc(c int, call, ret int64, e string, in bool) SetOp[string] {
	return SetOp[string]{Client: c, Call: call, Return: ret, Kind: SetContains, Elem: e, Result: in}
}

func TestSetCheckers(t *testing.T) {
	type setc = checkCase[SetOp[string], [][]string]
	runCases(t, SetLinearizable[string], SetSequential[string], SetWeak[string], []setc{
		{"fresh read", []SetOp[string]{sa(0, 0, 1, "x"), sc(1, 2, 3, "x", true)}, [][]string{{"x"}, {"x"}}, "lsw", ""},
		{"stale read", []SetOp[string]{sa(0, 0, 1, "x"), sc(1, 2, 3, "x", false)}, [][]string{{"x"}, {"x"}}, "sw", "l"},
		{"read misses own add", []SetOp[string]{sa(0, 0, 1, "x"), sc(0, 2, 3, "x", false)}, [][]string{{"x"}}, "", "lsw"},
		{"read misses own remove", []SetOp[string]{sa(0, 0, 1, "x"), sr(0, 2, 3, "x"), sc(0, 4, 5, "x", true)}, [][]string{nil}, "", "lsw"},
		{"contains with no add", []SetOp[string]{sc(0, 0, 1, "x", true)}, [][]string{nil}, "", "lsw"},
		{"reads flip back", []SetOp[string]{sa(1, 0, 1, "x"), sc(0, 2, 3, "x", true), sc(0, 4, 5, "x", false)}, [][]string{{"x"}, {"x"}}, "", "lsw"},
		// Client 1's remove did not observe client 0's add, which survives it:
		// stale, as client 0's add returned before the remove was invoked.
		{"add survives a later remove", []SetOp[string]{sa(1, 0, 1, "x"), sc(1, 2, 3, "x", true), sa(0, 0, 1, "x"), sr(1, 4, 5, "x"), sc(1, 6, 7, "x", true)}, [][]string{{"x"}, {"x"}}, "sw", "l"},
		{"finals diverge", []SetOp[string]{sa(0, 0, 1, "x")}, [][]string{{"x"}, nil}, "", "lsw"},
		// The add was invoked after the only remove returned: nothing can
		// have removed it (sequential consistency ignores real time).
		{"lost add", []SetOp[string]{sr(1, 0, 1, "x"), sa(0, 2, 3, "x")}, [][]string{nil, nil}, "s", "lw"},
		{"lost add, sequentially too", []SetOp[string]{sa(0, 0, 1, "x"), sc(0, 2, 3, "x", true)}, [][]string{nil}, "", "lsw"},
		{"final lists an element twice", []SetOp[string]{sa(0, 0, 1, "x")}, [][]string{{"x", "x"}}, "", "lsw"},
	})
}

func mp(c int, call, ret int64, k string, v int) MapOp[string, int] {
	return MapOp[string, int]{Client: c, Call: call, Return: ret, Kind: MapPut, Key: k, Value: v}
}

func md(c int, call, ret int64, k string) MapOp[string, int] {
	return MapOp[string, int]{Client: c, Call: call, Return: ret, Kind: MapDelete, Key: k}
}

func mg(c int, call, ret int64, k string, v int, found bool) MapOp[string, int] {
	return MapOp[string, int]{Client: c, Call: call, Return: ret, Kind: MapGet, Key: k, Value: v, Found: found}
}

func TestMapCheckers(t *testing.T) {
	type mc = checkCase[MapOp[string, int], []map[string]int]
	one := func(k string, v int) map[string]int { return map[string]int{k: v} }
	none := map[string]int{}
	runCases(t, MapLinearizable[string, int], MapSequential[string, int], MapWeak[string, int], []mc{
		{"fresh read", []MapOp[string, int]{mp(0, 0, 1, "k", 1), mg(1, 2, 3, "k", 1, true)}, []map[string]int{one("k", 1), one("k", 1)}, "lsw", ""},
		{"stale read", []MapOp[string, int]{mp(0, 0, 1, "k", 1), mg(1, 2, 3, "k", 0, false)}, []map[string]int{one("k", 1), one("k", 1)}, "sw", "l"},
		{"read misses own put", []MapOp[string, int]{mp(0, 0, 1, "k", 1), mg(0, 2, 3, "k", 0, false)}, []map[string]int{one("k", 1)}, "", "lsw"},
		{"read misses own delete", []MapOp[string, int]{mp(1, 0, 1, "k", 1), md(0, 2, 3, "k"), mg(0, 4, 5, "k", 1, true)}, []map[string]int{none, none}, "", "lsw"},
		{"reads go back", []MapOp[string, int]{mp(1, 0, 1, "k", 1), mp(1, 2, 3, "k", 2), mg(0, 4, 5, "k", 2, true), mg(0, 6, 7, "k", 1, true)}, []map[string]int{one("k", 2), one("k", 2)}, "", "lsw"},
		{"finals diverge", []MapOp[string, int]{mp(0, 0, 1, "k", 1)}, []map[string]int{one("k", 1), none}, "", "lsw"},
		{"final not the last write", []MapOp[string, int]{mp(0, 0, 1, "k", 1), mg(1, 2, 3, "k", 1, true), md(1, 4, 5, "k")}, []map[string]int{one("k", 1), one("k", 1)}, "", "lsw"},
		{"value nobody put", []MapOp[string, int]{mg(0, 0, 1, "k", 5, true)}, []map[string]int{none}, "", "lsw"},
	})
	wantUndecided(t, "duplicate puts", MapWeak([]MapOp[string, int]{mp(0, 0, 1, "k", 1), mp(1, 0, 1, "k", 1)}, []map[string]int{one("k", 1), one("k", 1)}))
}

func qe(c int, call, ret int64, e int) QueueOp[int] {
	return QueueOp[int]{Client: c, Call: call, Return: ret, Kind: Enqueue, Elem: e}
}

func qd(c int, call, ret int64, e int, ok bool) QueueOp[int] {
	return QueueOp[int]{Client: c, Call: call, Return: ret, Kind: Dequeue, Elem: e, Ok: ok}
}

func TestQueueCheckers(t *testing.T) {
	type qc = checkCase[QueueOp[int], [][]int]
	runCases(t, QueueLinearizable[int], QueueSequential[int], QueueWeak[int], []qc{
		{"fifo", []QueueOp[int]{qe(0, 0, 1, 1), qe(0, 2, 3, 2), qd(1, 4, 5, 1, true)}, [][]int{{2}, {2}}, "lsw", ""},
		{"stale empty", []QueueOp[int]{qe(0, 0, 1, 1), qd(1, 2, 3, 0, false)}, [][]int{{1}, {1}}, "sw", "l"},
		// Two replicas take the same element: at-least-once, weak only.
		{"duplicate dequeue", []QueueOp[int]{qe(0, 0, 1, 1), qd(1, 2, 3, 1, true), qd(2, 2, 3, 1, true)}, [][]int{nil, nil, nil}, "w", "ls"},
		{"producer order", []QueueOp[int]{qe(0, 0, 1, 1), qe(0, 2, 3, 2), qd(1, 4, 5, 2, true), qd(1, 6, 7, 1, true)}, [][]int{nil, nil}, "", "lsw"},
		{"dequeued twice by one client", []QueueOp[int]{qe(0, 0, 1, 1), qd(1, 2, 3, 1, true), qd(1, 4, 5, 1, true)}, [][]int{nil, nil}, "", "lsw"},
		{"empty after own enqueue", []QueueOp[int]{qe(0, 0, 1, 1), qd(0, 2, 3, 0, false)}, [][]int{{1}}, "", "lsw"},
		{"lost element", []QueueOp[int]{qe(0, 0, 1, 1), qe(0, 2, 3, 2)}, [][]int{{2}, {2}}, "", "lsw"},
		{"dequeued but still held", []QueueOp[int]{qe(0, 0, 1, 1), qd(1, 2, 3, 1, true)}, [][]int{{1}, {1}}, "", "lsw"},
		{"finals diverge", []QueueOp[int]{qe(0, 0, 1, 1)}, [][]int{{1}, nil}, "", "lsw"},
		{"element nobody enqueued", []QueueOp[int]{qd(0, 0, 1, 9, true)}, [][]int{nil}, "", "lsw"},
	})
}

func TestMalformedHistories(t *testing.T) {
	for name, err := range map[string]error{
		"return before call": CounterWeak([]CounterOp{add(0, 5, 4, 1)}, []int64{1}),
		"overlapping calls":  CounterWeak([]CounterOp{add(0, 0, 5, 1), add(0, 2, 3, 1)}, []int64{2}),
		"too few finals":     CounterWeak([]CounterOp{add(3, 0, 1, 1)}, []int64{1}),
		"negative client":    RegisterWeak([]RegisterOp[int]{w(-1, 0, 1, 1)}, nil),
	} {
		if !errors.Is(err, ErrBadHistory) {
			t.Errorf("%s: want ErrBadHistory, got %v", name, err)
		}
	}
}

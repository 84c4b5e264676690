package degradable

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/blossom-dso/blossom/degradable/check"
)

// seeds returns the seeds of a randomized test: 1..n, or 1..2 with -short.
func seeds(n int) []uint64 {
	if testing.Short() {
		n = min(n, 2)
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

// pulls are the pull periods the randomized tests cycle through, so that
// replicas lag by different amounts.
var pulls = []int{1, 3, 16}

// levelCase is one randomized test of a type at a level: a workload run
// under many seeds, each history given to the level's checker.
type levelCase[O, F any] struct {
	name  string
	level Level
	w     workload
	nseed int
	run   func(Level, workload, uint64) ([]O, F, error)
	check func([]O, F) error
}

func runLevels[O, F any](t *testing.T, cases []levelCase[O, F]) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, seed := range seeds(c.nseed) {
				w := c.w
				w.pullEvery = pulls[int(seed)%len(pulls)]
				ops, final, err := c.run(c.level, w, seed)
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				if err := c.check(ops, final); err != nil {
					t.Errorf("seed %d (%d clients x %d operations, PullEvery %d): %v", seed, w.clients, w.ops, w.pullEvery, err)
				}
			}
		})
	}
}

var (
	unitDeltas  = []int64{1}
	mixedDeltas = []int64{1, 2, 5, -1, -3}
)

// counterRunWith fixes the deltas of counterRun.
func counterRunWith(deltas []int64) func(Level, workload, uint64) ([]check.CounterOp, []int64, error) {
	return func(l Level, w workload, seed uint64) ([]check.CounterOp, []int64, error) {
		return counterRun(l, w, seed, deltas)
	}
}

func TestCounterLevels(t *testing.T) {
	unit, mixed := counterRunWith(unitDeltas), counterRunWith(mixedDeltas)
	incOnly := []Option{IncrementOnly()}
	runLevels(t, []levelCase[check.CounterOp, []int64]{
		{"linearizable", Linearizable, workload{clients: 4, ops: 150}, 6, mixed, check.CounterLinearizable},
		{"linearizable increment-only", Linearizable, workload{clients: 4, ops: 150, opts: incOnly}, 6, unit, check.CounterLinearizable},
		{"sequential", Sequential, workload{clients: 4, ops: 400}, 6, unit, check.CounterSequential},
		{"sequential mixed deltas", Sequential, workload{clients: 3, ops: 30}, 6, mixed, check.CounterSequential},
		{"weak", Weak, workload{clients: 6, ops: 400}, 6, mixed, check.CounterWeak},
		{"weak increment-only", Weak, workload{clients: 6, ops: 400, opts: incOnly}, 6, unit, check.CounterWeak},
	})
}

func TestRegisterLevels(t *testing.T) {
	runLevels(t, []levelCase[check.RegisterOp[int], []int]{
		{"linearizable", Linearizable, workload{clients: 4, ops: 150}, 6, registerRun, check.RegisterLinearizable[int]},
		{"sequential", Sequential, workload{clients: 6, ops: 400}, 6, registerRun, check.RegisterSequential[int]},
		{"sequential long (log trimmed)", Sequential, workload{clients: 4, ops: 6000}, 2, registerRun, check.RegisterSequential[int]},
		{"weak", Weak, workload{clients: 6, ops: 400}, 6, registerRun, check.RegisterWeak[int]},
	})
}

func setRunOver(universe int) func(Level, workload, uint64) ([]check.SetOp[int], [][]int, error) {
	return func(l Level, w workload, seed uint64) ([]check.SetOp[int], [][]int, error) {
		return setRun(l, w, seed, universe)
	}
}

func TestSetLevels(t *testing.T) {
	runLevels(t, []levelCase[check.SetOp[int], [][]int]{
		{"linearizable", Linearizable, workload{clients: 4, ops: 150}, 6, setRunOver(6), check.SetLinearizable[int]},
		{"sequential", Sequential, workload{clients: 3, ops: 80}, 6, setRunOver(6), check.SetSequential[int]},
		{"weak", Weak, workload{clients: 6, ops: 400}, 6, setRunOver(6), check.SetWeak[int]},
		{"weak long (logs trimmed)", Weak, workload{clients: 2, ops: 12000}, 1, setRunOver(50), check.SetWeak[int]},
	})
}

func mapRunOver(keys int) func(Level, workload, uint64) ([]check.MapOp[int, int], []map[int]int, error) {
	return func(l Level, w workload, seed uint64) ([]check.MapOp[int, int], []map[int]int, error) {
		return mapRun(l, w, seed, keys)
	}
}

func TestMapLevels(t *testing.T) {
	runLevels(t, []levelCase[check.MapOp[int, int], []map[int]int]{
		{"linearizable", Linearizable, workload{clients: 4, ops: 150}, 6, mapRunOver(4), check.MapLinearizable[int, int]},
		{"sequential", Sequential, workload{clients: 3, ops: 80}, 6, mapRunOver(4), check.MapSequential[int, int]},
		{"weak", Weak, workload{clients: 6, ops: 400}, 6, mapRunOver(4), check.MapWeak[int, int]},
		{"weak long (logs trimmed)", Weak, workload{clients: 2, ops: 12000}, 1, mapRunOver(50), check.MapWeak[int, int]},
	})
}

func TestQueueLevels(t *testing.T) {
	runLevels(t, []levelCase[check.QueueOp[int], [][]int]{
		{"linearizable", Linearizable, workload{clients: 3, ops: 30}, 6, queueRun, check.QueueLinearizable[int]},
		{"sequential", Sequential, workload{clients: 3, ops: 30}, 6, queueRun, check.QueueSequential[int]},
		{"weak", Weak, workload{clients: 6, ops: 400}, 6, queueRun, check.QueueWeak[int]},
		{"weak long (logs trimmed)", Weak, workload{clients: 2, ops: 12000}, 1, queueRun, check.QueueWeak[int]},
	})
}

// hunt runs try on seeds 1..n until it reports a violation, and fails the
// test if none does; any other error fails it at once.
func hunt(t *testing.T, name string, n int, try func(seed uint64) error) {
	t.Helper()
	for seed := uint64(1); seed <= uint64(n); seed++ {
		err := try(seed)
		switch {
		case errors.Is(err, check.ErrViolation):
			t.Logf("%s: caught at seed %d: %.300s", name, seed, err)
			return
		case err != nil:
			t.Fatalf("%s: seed %d: %v", name, seed, err)
		}
	}
	t.Fatalf("%s: no violation in seeds 1..%d", name, n)
}

// The sabotage tests plant a bug in an object and show that the checker of
// its level catches it; the randomized level tests above are the controls
// (the same workloads, without the bug, pass).

func TestSabotageLinearizableLostUpdate(t *testing.T) {
	w := workload{clients: 4, ops: 100, pullEvery: 1, opts: []Option{withBug(bugLostUpdate)}}
	hunt(t, "lost update under the lock", 100, func(seed uint64) error {
		ops, final, err := counterRun(Linearizable, w, seed, mixedDeltas)
		if err != nil {
			return err
		}
		return check.CounterLinearizable(ops, final)
	})
}

func TestSabotageSequentialStaleRead(t *testing.T) {
	w := workload{clients: 4, ops: 200, pullEvery: 16, opts: []Option{withBug(bugStaleRead)}}
	hunt(t, "counter read behind the client's own add", 100, func(seed uint64) error {
		ops, final, err := counterRun(Sequential, w, seed, unitDeltas)
		if err != nil {
			return err
		}
		return check.CounterSequential(ops, final)
	})
	hunt(t, "register read behind the client's own write", 100, func(seed uint64) error {
		ops, final, err := registerRun(Sequential, w, seed)
		if err != nil {
			return err
		}
		return check.RegisterSequential(ops, final)
	})
}

func TestSabotageWeakLosingMerge(t *testing.T) {
	w := workload{clients: 4, ops: 200, pullEvery: 3, opts: []Option{withBug(bugLosingMerge)}}
	hunt(t, "counter merge losing a writer", 100, func(seed uint64) error {
		ops, final, err := counterRun(Weak, w, seed, mixedDeltas)
		if err != nil {
			return err
		}
		return check.CounterWeak(ops, final)
	})
	hunt(t, "register merge losing a writer", 100, func(seed uint64) error {
		ops, final, err := registerRun(Weak, w, seed)
		if err != nil {
			return err
		}
		return check.RegisterWeak(ops, final)
	})
	hunt(t, "set merge losing a writer", 100, func(seed uint64) error {
		ops, final, err := setRun(Weak, w, seed, 6)
		if err != nil {
			return err
		}
		return check.SetWeak(ops, final)
	})
	hunt(t, "map merge losing a writer", 100, func(seed uint64) error {
		ops, final, err := mapRun(Weak, w, seed, 4)
		if err != nil {
			return err
		}
		return check.MapWeak(ops, final)
	})
	hunt(t, "queue merge losing a writer", 100, func(seed uint64) error {
		ops, final, err := queueRun(Weak, w, seed)
		if err != nil {
			return err
		}
		return check.QueueWeak(ops, final)
	})
}

// TestLevelsDegrade shows the levels apart on correct objects: the
// sequential counter's lagging reads are not linearizable, and the weak
// counter's private views are not sequentially consistent, so each checker
// rejects histories of the level below it.
func TestLevelsDegrade(t *testing.T) {
	w := workload{clients: 4, ops: 200, pullEvery: 16}
	hunt(t, "sequential counter checked for linearizability", 100, func(seed uint64) error {
		ops, final, err := counterRun(Sequential, w, seed, unitDeltas)
		if err != nil {
			return err
		}
		return check.CounterLinearizable(ops, final)
	})
	hunt(t, "weak counter checked for sequential consistency", 100, func(seed uint64) error {
		ops, final, err := counterRun(Weak, w, seed, unitDeltas)
		if err != nil {
			return err
		}
		return check.CounterSequential(ops, final)
	})
}

func TestIncrementOnlyEnforced(t *testing.T) {
	for _, level := range Levels() {
		hs, err := NewCounter(level, 2, IncrementOnly())
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []int64{-1, 0, 2} {
			if err := hs[0].Add(d); !errors.Is(err, ErrIncrementOnly) {
				t.Errorf("%v: Add(%d) = %v, want ErrIncrementOnly", level, d, err)
			}
		}
		if err := hs[1].Add(1); err != nil {
			t.Errorf("%v: Add(1) = %v", level, err)
		}
		syncTwice(hs)
		if v := hs[0].Value(); v != 1 {
			t.Errorf("%v: refused adds took effect: value %d, want 1", level, v)
		}
	}
}

func TestConstructorsRefuse(t *testing.T) {
	for name, err := range map[string]error{
		"level 0":                 errOf(NewCounter(0, 1)),
		"level 4":                 errOf(NewRegister[int](Level(4), 1)),
		"no replica":              errOf(NewSet[int](Weak, 0)),
		"too many replicas":       errOf(NewMap[int, int](Sequential, MaxReplicas+1)),
		"PullEvery(0)":            errOf(NewQueue[int](Weak, 2, PullEvery(0))),
		"nil option":              errOf(NewCounter(Weak, 2, nil)),
		"IncrementOnly on a set":  errOf(NewSet[int](Weak, 2, IncrementOnly())),
		"IncrementOnly on a map":  errOf(NewMap[int, int](Linearizable, 2, IncrementOnly())),
		"IncrementOnly on queues": errOf(NewQueue[int](Sequential, 2, IncrementOnly())),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func errOf[T any](_ T, err error) error { return err }

func TestLevelNames(t *testing.T) {
	for _, l := range Levels() {
		got, err := ParseLevel(l.String())
		if err != nil || got != l {
			t.Errorf("ParseLevel(%q) = %v, %v", l.String(), got, err)
		}
	}
	if got, err := ParseLevel("WEAK"); err != nil || got != Weak {
		t.Errorf("ParseLevel(WEAK) = %v, %v", got, err)
	}
	if _, err := ParseLevel("causal"); err == nil {
		t.Error("ParseLevel(causal) accepted")
	}
	if s := Level(9).String(); s != "level(9)" {
		t.Errorf("Level(9) = %q", s)
	}
}

// TestHandles checks what every handle reports about itself.
func TestHandles(t *testing.T) {
	for _, level := range Levels() {
		cs, _ := NewCounter(level, 3)
		rs, _ := NewRegister[string](level, 3)
		ss, _ := NewSet[string](level, 3)
		ms, _ := NewMap[string, int](level, 3)
		qs, _ := NewQueue[string](level, 3)
		for i := range 3 {
			for _, h := range []Handle{cs[i], rs[i], ss[i], ms[i], qs[i]} {
				if h.Level() != level || h.Replica() != i {
					t.Errorf("%T: Level %v Replica %d, want %v %d", h, h.Level(), h.Replica(), level, i)
				}
			}
		}
	}
}

// TestSequentialQuiescence checks the contract of Sync and of
// read-your-writes on a replica that never pulls: one client's updates are
// invisible elsewhere until a pull, visible to itself at once, and
// everywhere after Sync.
func TestSequentialQuiescence(t *testing.T) {
	for _, level := range []Level{Sequential, Weak} {
		ss, err := NewSet[string](level, 2, PullEvery(1000))
		if err != nil {
			t.Fatal(err)
		}
		ss[0].Add("x")
		if !ss[0].Contains("x") {
			t.Errorf("%v: replica 0 does not see its own add", level)
		}
		if ss[1].Contains("x") {
			t.Errorf("%v: replica 1 sees the add before any pull (PullEvery(1000)): the test's premise is wrong", level)
		}
		ss[0].Sync() // publishes (the weak set's log already has)
		ss[1].Sync()
		if !ss[1].Contains("x") {
			t.Errorf("%v: replica 1 does not see the add after Sync", level)
		}
	}
}

// TestLogTrimming checks that logs stay bounded while a replica's client is
// idle: the writer pushes the oldest chunk to it before dropping the chunk,
// so the idle replica still converges.
func TestLogTrimming(t *testing.T) {
	const n = (retainChunks + 16) * chunkSize // well beyond what a log retains
	rs, err := NewRegister[int](Sequential, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		rs[0].Write(i + 1)
	}
	s := rs[0].(*seqRegister[int]).s
	if v := s.log.view.Load(); len(v.chunks) > retainChunks+1 || v.start == 0 {
		t.Errorf("sequential log: %d chunks from %d after %d appends, want at most %d and some dropped", len(v.chunks), v.start, n, retainChunks+1)
	}
	if c := s.replicas[2].cursor.Load(); c < n-retainChunks*chunkSize {
		t.Errorf("idle sequential replica applied %d entries of %d: the trimmer did not push", c, n)
	}
	rs[2].Sync()
	if v := rs[2].Read(); v != n {
		t.Errorf("idle sequential replica reads %d after Sync, want %d", v, n)
	}

	ss, err := NewSet[int](Weak, 3, PullEvery(1<<30))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ss[0].Add(i % 100)
	}
	r := ss[0].(*weakSet[int]).r
	if v := r.out.view.Load(); len(v.chunks) > retainChunks+1 || v.start == 0 {
		t.Errorf("weak outbox: %d chunks from %d after %d appends, want at most %d and some dropped", len(v.chunks), v.start, n, retainChunks+1)
	}
	ss[2].Sync()
	got, want := ss[2].Elements(), ss[0].Elements()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || len(want) != 100 {
		t.Errorf("idle weak replica holds %d elements after Sync, the writer %d (want 100 each)", len(got), len(want))
	}
}

// ExampleNewCounter shows one counter at the weak level: each goroutine
// gets its own handle.
func ExampleNewCounter() {
	hs, err := NewCounter(Weak, 2)
	if err != nil {
		panic(err)
	}
	_ = hs[0].Add(5)
	_ = hs[1].Add(-2)
	fmt.Println(hs[0].Value()) // its own add, at once
	hs[1].Sync()               // publishes replica 1's add
	hs[0].Sync()               // applies it at replica 0
	fmt.Println(hs[0].Value())
	// Output:
	// 5
	// 3
}

// TestORSetForgetsTags checks that the weak set keeps no tombstone once
// every effector has arrived, even when two replicas remove the same tag
// concurrently, and that re-adding an element keeps one tag per writer.
func TestORSetForgetsTags(t *testing.T) {
	ss, err := NewSet[string](Weak, 3, PullEvery(1<<30))
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		ss[0].Add("x")
	}
	ss[1].Sync()
	ss[2].Sync()
	ss[1].Remove("x") // both remove the same tag, unaware of each other
	ss[2].Remove("x")
	for range 3 {
		ss[0].Add("y") // each add replaces the last one's tag
	}
	for _, s := range ss {
		s.Sync()
	}
	for i, s := range ss {
		st := s.(*weakSet[string]).st
		if x := st.elems["x"]; x != nil {
			t.Errorf("replica %d still holds x: %d live, %d dead tags", i, len(x.live), len(x.dead))
		}
		if y := st.elems["y"]; y == nil || len(y.live) != 1 || len(y.dead) != 0 {
			t.Errorf("replica %d: y has %v, want one live tag", i, y)
		}
	}
}

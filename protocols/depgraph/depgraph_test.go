package depgraph

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

func dot(n protocols.NodeID, s uint64) Dot { return Dot{Node: n, Seq: s} }

// cmdOf names a command after its dot so a test can read the order back.
func cmdOf(d Dot) protocols.Command {
	return protocols.Command{ID: protocols.CommandID{Client: uint64(d.Node), Seq: d.Seq}}
}

type recorder struct {
	g     *Graph
	order []Dot
}

func newRecorder() *recorder {
	r := &recorder{}
	r.g = New(func(c protocols.Command) {
		r.order = append(r.order, Dot{Node: protocols.NodeID(c.ID.Client), Seq: c.ID.Seq})
	})
	return r
}

func (r *recorder) commit(d Dot, deps ...Dot) { r.g.Commit(d, cmdOf(d), deps, false) }

func TestChainExecutesDependenciesFirst(t *testing.T) {
	r := newRecorder()
	a, b, c := dot(1, 1), dot(2, 1), dot(3, 1)
	r.commit(c, b)
	r.commit(b, a)
	require.Empty(t, r.order, "nothing runs while the head of the chain is missing")
	require.Equal(t, []Dot{a}, r.g.Missing())
	r.commit(a)
	require.Equal(t, []Dot{a, b, c}, r.order)
	require.Empty(t, r.g.Missing())
	require.Zero(t, r.g.Pending())
	for _, d := range []Dot{a, b, c} {
		require.True(t, r.g.IsExecuted(d))
	}
}

func TestCycleExecutesInDotOrder(t *testing.T) {
	r := newRecorder()
	a, b, c := dot(1, 1), dot(2, 1), dot(3, 1)
	r.commit(c, a)
	r.commit(b, c)
	require.Empty(t, r.order)
	r.commit(a, b)
	require.Equal(t, []Dot{a, b, c}, r.order)
}

func TestNestedComponentsRunDependenciesFirst(t *testing.T) {
	r := newRecorder()
	// Component X = {3.1, 3.2} depends on component Y = {1.5, 2.2}, which
	// depends on the single 4.1.
	x1, x2, y1, y2, z := dot(3, 1), dot(3, 2), dot(1, 5), dot(2, 2), dot(4, 1)
	r.commit(x2, x1, y2)
	r.commit(x1, x2)
	r.commit(y1, y2, z)
	r.commit(y2, y1)
	require.Empty(t, r.order)
	require.Equal(t, []Dot{z}, r.g.Missing())
	r.commit(z)
	require.Equal(t, []Dot{z, y1, y2, x1, x2}, r.order)
}

func TestMissingDependencyBlocksUntilCommitted(t *testing.T) {
	r := newRecorder()
	a, b, c, d := dot(1, 1), dot(1, 2), dot(2, 1), dot(3, 1)
	r.commit(b, a, c)
	r.commit(d) // independent: runs at once
	require.Equal(t, []Dot{d}, r.order)
	require.Equal(t, []Dot{a, c}, r.g.Missing())
	r.commit(a)
	require.Equal(t, []Dot{d, a}, r.order, "b still waits for c")
	require.Equal(t, []Dot{c}, r.g.Missing())
	require.False(t, r.g.IsExecuted(b))
	require.True(t, r.g.IsCommitted(b))
	r.commit(c)
	require.Equal(t, []Dot{d, a, c, b}, r.order)
	require.Equal(t, uint64(2), r.g.ExecutedPrefix(1))
}

func TestNopUnblocksButIsNotExecuted(t *testing.T) {
	r := newRecorder()
	var done []Dot
	r.g.OnDone(func(d Dot, nop bool) {
		if nop {
			done = append(done, d)
		}
	})
	a, b := dot(1, 1), dot(2, 1)
	r.commit(b, a)
	r.g.Commit(a, protocols.Command{}, nil, true)
	require.Equal(t, []Dot{b}, r.order)
	require.True(t, r.g.IsExecuted(a))
	require.Equal(t, []Dot{a}, done)
}

func TestDuplicateCommitAndSelfDependencyAreIgnored(t *testing.T) {
	r := newRecorder()
	a := dot(1, 1)
	r.commit(a, a, a)
	r.commit(a)
	require.Equal(t, []Dot{a}, r.order)
}

func TestExecutedSummaryAboveAGap(t *testing.T) {
	r := newRecorder()
	r.commit(dot(1, 3))
	r.commit(dot(1, 1))
	require.Equal(t, uint64(1), r.g.ExecutedPrefix(1))
	require.True(t, r.g.IsExecuted(dot(1, 3)))
	require.False(t, r.g.IsExecuted(dot(1, 2)))
	r.commit(dot(1, 2))
	require.Equal(t, uint64(3), r.g.ExecutedPrefix(1))
}

// TestLongChainCommittedBackwards checks that a long chain whose head
// commits last is executed completely and in order (no recursion limit, no
// quadratic walk: the benchmark measures the cost).
func TestLongChainCommittedBackwards(t *testing.T) {
	const n = 100_000
	r := newRecorder()
	for i := n; i >= 2; i-- {
		r.commit(dot(1, uint64(i)), dot(1, uint64(i-1)))
	}
	require.Empty(t, r.order)
	r.commit(dot(1, 1))
	require.Len(t, r.order, n)
	for i, d := range r.order {
		require.Equal(t, uint64(i+1), d.Seq)
	}
}

// BenchmarkLongChain commits chains of 100k commands in three orders: in
// order (each one executes at once), backwards (everything waits for the
// head), and forwards with the head missing until the end (each new commit
// meets the blocked region).
func BenchmarkLongChain(b *testing.B) {
	const n = 100_000
	for _, mode := range []string{"in-order", "backwards", "head-last"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				executed := 0
				g := New(func(protocols.Command) { executed++ })
				switch mode {
				case "in-order":
					for i := 1; i <= n; i++ {
						g.Commit(dot(1, uint64(i)), protocols.Command{}, []Dot{dot(1, uint64(max(i-1, 1)))}, false)
					}
				case "backwards":
					for i := n; i >= 1; i-- {
						g.Commit(dot(1, uint64(i)), protocols.Command{}, []Dot{dot(1, uint64(max(i-1, 1)))}, false)
					}
				case "head-last":
					for i := 2; i <= n; i++ {
						// each command depends on its predecessor and on an
						// older one, like a dependency set under load
						g.Commit(dot(1, uint64(i)), protocols.Command{}, []Dot{dot(1, uint64(i-1)), dot(1, uint64(max(1, i-10)))}, false)
					}
					g.Commit(dot(1, 1), protocols.Command{}, nil, false)
				}
				if executed != n {
					b.Fatalf("%s: executed %d of %d", mode, executed, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/command")
		})
	}
}

// randomGraph builds nCmd commands over nKeys keys, coordinated by 3 nodes,
// whose dependencies satisfy Visibility (of two conflicting commands at
// least one depends on the other) and contain cycles, plus extra random
// dependencies, Nops and non-conflicting pairs.
type spec struct {
	dot  Dot
	key  int
	deps []Dot
	nop  bool
}

func randomGraph(rng *rand.Rand, nCmd, nKeys int) []spec {
	specs := make([]spec, nCmd)
	seq := map[protocols.NodeID]uint64{}
	for i := range specs {
		node := protocols.NodeID(1 + rng.IntN(3))
		seq[node]++
		specs[i] = spec{dot: Dot{Node: node, Seq: seq[node]}, key: rng.IntN(nKeys), nop: rng.IntN(10) == 0}
	}
	for i := range specs {
		for j := range i {
			conflict := specs[i].key == specs[j].key
			switch {
			case conflict && rng.IntN(5) == 0: // both ways: a cycle
				specs[i].deps = append(specs[i].deps, specs[j].dot)
				specs[j].deps = append(specs[j].deps, specs[i].dot)
			case conflict && rng.IntN(8) == 0: // the older depends on the newer
				specs[j].deps = append(specs[j].deps, specs[i].dot)
			case conflict:
				specs[i].deps = append(specs[i].deps, specs[j].dot)
			case rng.IntN(30) == 0:
				specs[i].deps = append(specs[i].deps, specs[j].dot)
			}
		}
	}
	return specs
}

// TestCommitOrderDoesNotChangeExecutionOrder delivers the same committed
// graph in many commit orders and checks that every conflicting pair runs
// in the same relative order each time, that everything runs exactly once,
// and that a command never runs before a dependency outside its component.
func TestCommitOrderDoesNotChangeExecutionOrder(t *testing.T) {
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 7))
		specs := randomGraph(rng, 10+rng.IntN(50), 1+rng.IntN(4))
		byDot := map[Dot]spec{}
		for _, s := range specs {
			byDot[s.dot] = s
		}
		var ref map[Dot]int
		for perm := range 8 {
			r := newRecorder()
			order := rng.Perm(len(specs))
			if perm == 0 {
				order = nil
				for i := range specs {
					order = append(order, i)
				}
			}
			for _, i := range order {
				s := specs[i]
				r.g.Commit(s.dot, cmdOf(s.dot), s.deps, s.nop)
			}
			pos := map[Dot]int{}
			for i, d := range r.order {
				_, dup := pos[d]
				require.False(t, dup, "seed %d: %v executed twice", seed, d)
				pos[d] = i
			}
			for _, s := range specs {
				_, ran := pos[s.dot]
				require.Equal(t, !s.nop, ran, "seed %d: %v", seed, s.dot)
				require.True(t, r.g.IsExecuted(s.dot))
			}
			require.Zero(t, r.g.Pending())
			if ref == nil {
				ref = pos
				continue
			}
			for _, a := range specs {
				for _, b := range specs {
					if a.nop || b.nop || a.key != b.key || !a.dot.Less(b.dot) {
						continue
					}
					require.Equal(t, ref[a.dot] < ref[b.dot], pos[a.dot] < pos[b.dot],
						"seed %d perm %d: %v and %v ran in different orders", seed, perm, a.dot, b.dot)
				}
			}
		}
	}
}

// TestDependencyRunsFirstUnlessInSameComponent checks the topological
// property directly on a graph without cycles.
func TestDependencyRunsFirstUnlessInSameComponent(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for range 30 {
		n := 40
		r := newRecorder()
		deps := make([][]Dot, n+1)
		for i := 2; i <= n; i++ {
			for range rng.IntN(4) {
				deps[i] = append(deps[i], dot(1, uint64(1+rng.IntN(i-1))))
			}
		}
		for _, i := range rng.Perm(n) {
			r.commit(dot(1, uint64(i+1)), deps[i+1]...)
		}
		pos := map[Dot]int{}
		for i, d := range r.order {
			pos[d] = i
		}
		require.Len(t, pos, n)
		for i := 2; i <= n; i++ {
			for _, d := range deps[i] {
				require.Less(t, pos[d], pos[dot(1, uint64(i))], fmt.Sprintf("%v before %d", d, i))
			}
		}
	}
}

func TestMissingIsSorted(t *testing.T) {
	r := newRecorder()
	r.commit(dot(5, 1), dot(3, 9), dot(1, 2), dot(3, 1))
	require.True(t, slices.IsSortedFunc(r.g.Missing(), Dot.Compare))
	require.Equal(t, []Dot{dot(1, 2), dot(3, 1), dot(3, 9)}, r.g.Missing())
}

// TestCycleThroughABlockedNode covers a node parked behind a missing dot
// that is later found again from inside its own cycle: the stale block must
// not deadlock the two.
func TestCycleThroughABlockedNode(t *testing.T) {
	r := newRecorder()
	w, m, k := dot(1, 1), dot(2, 1), dot(3, 1)
	r.commit(w, k, m)
	r.commit(m, w)
	require.Equal(t, []Dot{k}, r.g.Missing())
	r.commit(k)
	require.Equal(t, []Dot{k, w, m}, r.order)

	// The same, when the missing dot is itself part of the cycle.
	r = newRecorder()
	r.commit(w, m)
	r.commit(m, k)
	r.commit(k, w)
	require.Equal(t, []Dot{w, m, k}, r.order)
}

// TestExecutedSummaryOfSmallAndLargeNodes: nodes below smallNodes are read
// from the slice, the others from the map; both give the same answers, the
// slice holds exactly done's small entries, and a chain through dots of
// such nodes executes once its head commits.
func TestExecutedSummaryOfSmallAndLargeNodes(t *testing.T) {
	nodes := []protocols.NodeID{0, 1, 5, smallNodes - 1, smallNodes, smallNodes + 1, 1000, 1<<32 - 1}
	r := newRecorder()
	var prev Dot
	for i, n := range slices.Backward(nodes) {
		d := dot(n, 2)
		if i < len(nodes)-1 {
			r.commit(d, prev)
		} else {
			r.commit(d)
		}
		prev = d
	}
	require.Len(t, r.order, len(nodes))
	for _, n := range nodes {
		require.True(t, r.g.IsExecuted(dot(n, 2)), "node %d", n)
		require.False(t, r.g.IsExecuted(dot(n, 1)), "node %d", n)
		require.Zero(t, r.g.ExecutedPrefix(n), "node %d", n)
		require.Equal(t, []uint64{2}, r.g.ExecutedAbove(n), "node %d", n)
	}
	for _, n := range []protocols.NodeID{2, smallNodes + 2, 1 << 20} {
		require.False(t, r.g.IsExecuted(dot(n, 2)), "node %d never ran", n)
	}
	r.g.MarkExecutedPrefix(7, 4)
	r.g.MarkExecutedPrefix(1<<20, 4)
	r.g.MarkExecuted(dot(1000, 1))
	r.commit(dot(1<<20, 5), dot(7, 4), dot(1000, 1), dot(1000, 2))
	require.True(t, r.g.IsExecuted(dot(1<<20, 5)))
	for _, n := range []protocols.NodeID{7, 1000, 1 << 20} {
		require.True(t, r.g.IsExecuted(dot(n, 1)), "node %d", n)
	}
	require.Equal(t, uint64(5), r.g.ExecutedPrefix(1<<20))
	require.Equal(t, uint64(2), r.g.ExecutedPrefix(1000))
	for n := range protocols.NodeID(smallNodes) {
		var p *prefix
		if int(n) < len(r.g.small) {
			p = r.g.small[n]
		}
		require.Same(t, r.g.done[n], p, "node %d", n)
	}
}

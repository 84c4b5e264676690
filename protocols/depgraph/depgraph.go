// Package depgraph executes committed commands in dependency order. It is
// the execution layer shared by the leaderless protocols (EPaxos*, Atlas):
// each command instance is named by a Dot and committed with a set of
// dependencies; a command executes once every command it reaches through
// dependencies is committed, strongly connected components (Tarjan) in
// dependency-first order, and inside a component in Dot order. A Nop is
// committed, unblocks its dependants, and is never handed to exec.
//
// # Incremental, iterative Tarjan
//
// Commit runs Tarjan's algorithm from the newly committed dot only, with an
// explicit stack (no recursion, so chains of any length are fine), and
// executes each component the moment Tarjan closes it: at that point every
// dependency outside the component has executed. When the search reaches a
// dependency that is not committed (a "missing" dot), it stops; every node
// left on Tarjan's stack reaches the missing dot, so each of them is marked
// blocked by it and parked in the missing dot's wait list. A later search
// that reaches a blocked node stops at once (it is blocked by the same dot)
// instead of walking the blocked region again, so a long chain that waits
// for one missing command costs O(1) per new commit, not O(chain). When the
// missing dot commits, its wait list is retried. Executed nodes leave the
// graph at once; what remains of them is a per-coordinator executed prefix
// plus the executed dots above it, which is what IsExecuted reads.
//
// # Determinism
//
// The order of execution depends only on the commits and the order of the
// Commit calls; no map iteration order reaches an output. For two commands
// of which one reaches the other through dependencies, every replica that
// commits the same (deps) for every dot executes them in the same relative
// order, whatever order the commits arrive in (the property the tests
// check): a component is executed only when all of it is committed, so
// every replica sees the same components, and dependencies run first.
//
// A Graph is not safe for concurrent use, and exec must not call back into
// the Graph.
package depgraph

import (
	"fmt"
	"slices"

	"github.com/blossom-dso/blossom/protocols"
)

// Dot identifies a command instance: its initial coordinator and that
// coordinator's sequence number, starting at 1. Dots are totally ordered
// (Node, then Seq).
type Dot struct {
	Node protocols.NodeID
	Seq  uint64
}

// Less orders dots by node, then sequence number.
func (d Dot) Less(e Dot) bool {
	if d.Node != e.Node {
		return d.Node < e.Node
	}
	return d.Seq < e.Seq
}

// Compare returns -1, 0 or +1 as d is before, equal to or after e; it suits
// slices.SortFunc.
func (d Dot) Compare(e Dot) int {
	switch {
	case d == e:
		return 0
	case d.Less(e):
		return -1
	}
	return 1
}

// String formats the dot as node.seq.
func (d Dot) String() string { return fmt.Sprintf("%d.%d", d.Node, d.Seq) }

// node is a committed, not yet executed command. A dot is never both a
// node and executed: a node leaves nodes as it executes, Commit ignores an
// executed dot, and MarkExecuted(Prefix) run before the dots they cover are
// committed. So an executed dependency is recognized from the executed
// summary alone, without a lookup in nodes.
type node struct {
	dot  Dot
	cmd  protocols.Command
	deps []Dot
	nop  bool
	// group, when set, is the group the node was parked in by a search that
	// stopped at a missing dot. The node is blocked while the root of the
	// group's tree is not committed; after that the pointer is stale.
	group *group
	// Tarjan state, valid while run equals the Graph's current run.
	run     uint64
	index   int
	low     int
	onStack bool
}

// group holds nodes blocked by one missing dot. When the dot commits and
// its own search parks it behind another missing dot, the group is merged
// (in O(1)) below that dot's group; when it commits and executes, the group
// and everything merged below it is retried. Union-find with path
// compression on parent finds a group's current root.
type group struct {
	parent   *group
	root     Dot // the missing dot; meaningful when parent is nil
	members  []*node
	children []*group
}

// prefix summarizes the executed dots of one coordinator: every seq in
// 1..upto, plus the seqs in above.
type prefix struct {
	upto  uint64
	above map[uint64]struct{}
}

// Graph is the dependency graph of committed, not yet executed commands.
// The zero value is unusable; use New.
type Graph struct {
	exec   func(protocols.Command)
	onDone func(Dot, bool)

	nodes map[Dot]*node                // committed, not executed
	done  map[protocols.NodeID]*prefix // executed (or passed Nop)
	// small holds done's entries of the nodes below smallNodes, indexed by
	// node (nil where done has none), so that checking each dependency
	// against the executed summary needs no hashing. It follows from done
	// alone, whatever the order of the calls.
	small   []*prefix
	missing map[Dot]struct{} // deps of nodes that are not committed
	groups  map[Dot]*group   // missing dot -> nodes blocked by it

	run   uint64
	stack []*node // Tarjan's stack
	calls []frame // the DFS call stack
	scc   []*node // scratch
}

type frame struct {
	n *node
	i int // next dep to look at
}

// New returns an empty graph that hands executed commands to exec.
func New(exec func(protocols.Command)) *Graph {
	return &Graph{
		exec:    exec,
		nodes:   map[Dot]*node{},
		done:    map[protocols.NodeID]*prefix{},
		missing: map[Dot]struct{}{},
		groups:  map[Dot]*group{},
	}
}

// OnDone registers fn, called for every dot as it leaves the graph, in
// execution order, after exec (nop reports whether it was a Nop, which exec
// never sees). Protocols use it to garbage-collect their instance state.
func (g *Graph) OnDone(fn func(d Dot, nop bool)) { g.onDone = fn }

// IsExecuted reports whether d has passed execution: it was executed, or it
// was a committed Nop whose turn has come.
func (g *Graph) IsExecuted(d Dot) bool {
	p := g.prefixOf(d.Node)
	if p == nil {
		return false
	}
	if d.Seq >= 1 && d.Seq <= p.upto {
		return true
	}
	_, ok := p.above[d.Seq]
	return ok
}

// smallNodes bounds the nodes whose executed summaries small holds.
const smallNodes = 64

// prefixOf returns the executed summary of node, nil if none of its dots
// has passed execution.
func (g *Graph) prefixOf(node protocols.NodeID) *prefix {
	if node < smallNodes {
		if int(node) < len(g.small) {
			return g.small[node]
		}
		return nil
	}
	return g.done[node]
}

// prefixFor returns the executed summary of node, creating it empty.
func (g *Graph) prefixFor(node protocols.NodeID) *prefix {
	p := g.prefixOf(node)
	if p == nil {
		p = &prefix{}
		g.done[node] = p
		if node < smallNodes {
			if int(node) >= len(g.small) {
				g.small = append(g.small, make([]*prefix, int(node)+1-len(g.small))...)
			}
			g.small[node] = p
		}
	}
	return p
}

// IsCommitted reports whether d was committed (executed or still waiting).
func (g *Graph) IsCommitted(d Dot) bool {
	_, ok := g.nodes[d]
	return ok || g.IsExecuted(d)
}

// ExecutedPrefix returns the largest s such that every dot (node, 1..s) has
// passed execution. A protocol may forget the state of those dots: the
// Graph remembers them in this summary.
func (g *Graph) ExecutedPrefix(node protocols.NodeID) uint64 {
	if p := g.prefixOf(node); p != nil {
		return p.upto
	}
	return 0
}

// Pending is the number of committed dots that have not executed yet.
func (g *Graph) Pending() int { return len(g.nodes) }

// Missing returns, sorted, the dots that some committed, unexecuted command
// depends on and that are not committed here: they block execution until
// they commit, so a protocol should learn or recover them.
func (g *Graph) Missing() []Dot {
	out := make([]Dot, 0, len(g.missing))
	for d := range g.missing {
		out = append(out, d)
	}
	slices.SortFunc(out, Dot.Compare)
	return out
}

// Commit records that d is committed with command cmd and dependencies deps
// (nop: a Nop, never executed), and executes every command that became
// executable. A second commit of d is ignored. deps may contain d itself and
// duplicates; both are ignored. The Graph keeps deps; the caller must not
// modify it afterwards.
func (g *Graph) Commit(d Dot, cmd protocols.Command, deps []Dot, nop bool) {
	if g.IsCommitted(d) {
		return
	}
	n := &node{dot: d, cmd: cmd, deps: deps, nop: nop}
	g.nodes[d] = n
	delete(g.missing, d)
	for _, x := range deps {
		// IsCommitted, the executed summary first: most deps have executed.
		if x != d && !g.IsExecuted(x) && g.nodes[x] == nil {
			g.missing[x] = struct{}{}
		}
	}
	// The nodes that waited for d are no longer blocked by it (their group
	// is stale now that d is committed): d's search may walk through them,
	// for instance when they form a cycle with d.
	waited := g.groups[d]
	delete(g.groups, d)
	g.search(n)
	if waited == nil {
		return
	}
	if n.group != nil {
		// d is blocked behind another missing dot, and so is everyone who
		// waited for d: merge the groups.
		r := g.find(n.group)
		waited.parent = r
		r.children = append(r.children, waited)
		return
	}
	g.fire(waited)
}

// find returns the root of gr's tree, compressing the path.
func (g *Graph) find(gr *group) *group {
	r := gr
	for r.parent != nil {
		r = r.parent
	}
	for gr != r {
		next := gr.parent
		gr.parent = r
		gr = next
	}
	return r
}

// blocker returns the group that blocks n, or nil if n is not blocked.
func (g *Graph) blocker(n *node) *group {
	if n.group == nil {
		return nil
	}
	r := g.find(n.group)
	if g.IsCommitted(r.root) {
		return nil
	}
	return r
}

// fire retries every node of gr's tree, whose missing dot has committed and
// executed.
func (g *Graph) fire(gr *group) {
	todo := []*group{gr}
	for len(todo) > 0 {
		gr := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, n := range gr.members {
			g.search(n)
		}
		for i := len(gr.children) - 1; i >= 0; i-- {
			todo = append(todo, gr.children[i])
		}
	}
}

// markDone records that d has passed execution.
func (g *Graph) markDone(d Dot) {
	p := g.prefixFor(d.Node)
	if d.Seq != p.upto+1 {
		if p.above == nil {
			p.above = map[uint64]struct{}{}
		}
		p.above[d.Seq] = struct{}{}
		return
	}
	p.upto++
	for {
		if _, ok := p.above[p.upto+1]; !ok {
			break
		}
		delete(p.above, p.upto+1)
		p.upto++
	}
}

// search runs Tarjan from root and executes every component it closes. It
// stops at the first missing dependency, or dependency blocked by one, and
// parks the nodes left on Tarjan's stack.
func (g *Graph) search(root *node) {
	if g.nodes[root.dot] != root || g.blocker(root) != nil {
		return // executed meanwhile, or still blocked
	}
	g.run++
	index := 0
	visit := func(n *node) {
		n.run, n.index, n.low, n.onStack = g.run, index, index, true
		n.group = nil
		index++
		g.stack = append(g.stack, n)
		g.calls = append(g.calls, frame{n: n})
	}
	visit(root)
	for len(g.calls) > 0 {
		top := &g.calls[len(g.calls)-1]
		n := top.n
		if top.i < len(n.deps) {
			x := n.deps[top.i]
			top.i++
			if x == n.dot || g.IsExecuted(x) {
				continue // an executed dot is no node (see node)
			}
			m := g.nodes[x]
			switch {
			case m == nil:
				gr := g.groups[x]
				if gr == nil {
					gr = &group{root: x}
					g.groups[x] = gr
				}
				g.park(gr)
				return
			case m.run == g.run:
				if m.onStack {
					n.low = min(n.low, m.index)
				}
			default:
				if b := g.blocker(m); b != nil {
					g.park(b)
					return
				}
				visit(m)
			}
			continue
		}
		// All deps of n are explored.
		g.calls = g.calls[:len(g.calls)-1]
		if len(g.calls) > 0 {
			p := g.calls[len(g.calls)-1].n
			p.low = min(p.low, n.low)
		}
		if n.low != n.index {
			continue
		}
		// n is the root of a component: pop it and execute it.
		i := len(g.stack) - 1
		for g.stack[i] != n {
			i--
		}
		g.scc = append(g.scc[:0], g.stack[i:]...)
		clear(g.stack[i:])
		g.stack = g.stack[:i]
		slices.SortFunc(g.scc, func(a, b *node) int { return a.dot.Compare(b.dot) })
		for _, m := range g.scc {
			m.onStack = false
			delete(g.nodes, m.dot)
			g.markDone(m.dot)
			if !m.nop {
				g.exec(m.cmd)
			}
			if g.onDone != nil {
				g.onDone(m.dot, m.nop)
			}
		}
		clear(g.scc)
	}
}

// park ends a search that reached a missing dot (gr's root): every node on
// Tarjan's stack reaches a node of the DFS path, which reaches the missing
// dot, so each is blocked until it commits.
func (g *Graph) park(gr *group) {
	for _, n := range g.stack {
		n.onStack = false
		n.group = gr
		gr.members = append(gr.members, n)
	}
	clear(g.stack)
	g.stack = g.stack[:0]
	clear(g.calls)
	g.calls = g.calls[:0]
}

// ExecutedAbove returns, sorted, the executed sequence numbers of node's dots
// above its executed prefix (ExecutedPrefix): the dots that passed execution
// out of order. With the prefix it describes every executed dot of node.
func (g *Graph) ExecutedAbove(node protocols.NodeID) []uint64 {
	p := g.done[node]
	if p == nil || len(p.above) == 0 {
		return nil
	}
	out := make([]uint64, 0, len(p.above))
	for s := range p.above {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// ExecutedNodes returns, sorted, the nodes of which some dot has passed
// execution.
func (g *Graph) ExecutedNodes() []protocols.NodeID {
	out := make([]protocols.NodeID, 0, len(g.done))
	for n := range g.done {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// MarkExecuted records that d has passed execution without executing it, as
// a protocol restarting from a checkpoint does for the dots its state
// machine snapshot already holds. It must be called before d is committed
// here; a dot already committed or executed is left alone.
func (g *Graph) MarkExecuted(d Dot) {
	if d.Seq == 0 || g.IsCommitted(d) {
		return
	}
	g.markDone(d)
}

// MarkExecutedPrefix records that every dot (node, 1..upto) has passed
// execution, as MarkExecuted does for each, in time independent of upto. Like
// MarkExecuted it is meant for a restart, before any of those dots is
// committed here.
func (g *Graph) MarkExecutedPrefix(node protocols.NodeID, upto uint64) {
	p := g.prefixFor(node)
	if upto <= p.upto {
		return
	}
	for s := range p.above {
		if s <= upto {
			delete(p.above, s)
		}
	}
	p.upto = upto
	for {
		if _, ok := p.above[p.upto+1]; !ok {
			break
		}
		delete(p.above, p.upto+1)
		p.upto++
	}
}

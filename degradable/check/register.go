package check

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
	"github.com/blossom-dso/blossom/lincheck"
)

// RegisterOp is one completed operation on a register: a Write of Value, or
// a Read that returned Value. V's zero value is the initial value.
type RegisterOp[V comparable] struct {
	Client       int   // the handle that called it
	Call, Return int64 // invocation and response, in one clock for the history
	Write        bool  // a write; a read otherwise
	Value        V     // what a write wrote or a read returned
}

func registerSpans[V comparable](ops []RegisterOp[V]) []span {
	s := make([]span, len(ops))
	for i, op := range ops {
		s[i] = span{op.Client, op.Call, op.Return}
	}
	return s
}

// RegisterLinearizable checks that ops, followed by the quiescent reads
// final (final[i] read by replica i after every operation returned and
// Sync), is linearizable, with Porcupine and lincheck.KVModel on one key
// (values are numbered; V's zero value is 0, the initial value). Exact,
// within PorcupineTimeout; values need not be unique.
func RegisterLinearizable[V comparable](ops []RegisterOp[V], final []V) error {
	spans := registerSpans(ops)
	if _, err := programOrder(spans, len(final)); err != nil {
		return err
	}
	in := newInterner[V]()
	hist := make([]porcupine.Operation, 0, len(ops)+len(final))
	for _, op := range ops {
		id := uint64(in.id(op.Value))
		var out any = lincheck.KVOutput{Value: id}
		if op.Write {
			out = nil
		}
		hist = append(hist, porcupine.Operation{ClientId: op.Client, Input: lincheck.KVInput{Put: op.Write, Value: id}, Call: op.Call, Output: out, Return: op.Return})
	}
	t := end(spans)
	for i, v := range final {
		hist = append(hist, porcupine.Operation{ClientId: i, Input: lincheck.KVInput{}, Call: t, Output: lincheck.KVOutput{Value: uint64(in.id(v))}, Return: t + 1})
	}
	return porcupineVerdict(lincheck.Check(lincheck.KVModel, hist, PorcupineTimeout))
}

// RegisterSequential checks that ops, with the quiescent reads final, is
// sequentially consistent, for histories whose writes write distinct values
// other than V's zero value (ErrUndecided otherwise). The finals are each
// client's last read and must all return the last write.
//
// With unique values every read names the write it read, and a history is
// sequentially consistent if and only if some total order of the writes
// makes each client's sequence of "current writes" (the write it made, or
// the write it read) non-decreasing, and strictly increasing at each of its
// writes, with no read of the initial value after a write was seen: given
// such an order, placing each read just after the write it read gives a
// witness. So the check is exact: it builds the graph of the orderings each
// client's program forces between writes and looks for a cycle, in linear
// time.
func RegisterSequential[V comparable](ops []RegisterOp[V], final []V) error {
	return registerOrder(ops, final, false)
}

// RegisterWeak checks ops, with the quiescent reads final, against the weak
// level (a last-writer-wins register with Lamport timestamps), for
// histories whose writes write distinct values other than V's zero value
// (ErrUndecided otherwise): some total order of the writes (the stamps)
// makes each client's reads return non-decreasing writes, never older than
// its own last write (read-your-writes, monotonic reads), makes each write
// newer than everything its client wrote or read (causality), and ends with
// the write every replica reads after quiescence and Sync (convergence);
// every read returns a write invoked before it returned (validity).
//
// For one register these are the same order constraints as
// RegisterSequential's, plus validity: a last-writer-wins register with
// read-your-writes, monotonic reads and Lamport timestamps is sequentially
// consistent. The levels differ for the register in what they cost, and in
// what they promise across objects (which this package does not check).
func RegisterWeak[V comparable](ops []RegisterOp[V], final []V) error {
	return registerOrder(ops, final, true)
}

// registerOrder is the check of RegisterSequential and RegisterWeak.
func registerOrder[V comparable](ops []RegisterOp[V], final []V, validity bool) error {
	spans := registerSpans(ops)
	po, err := programOrder(spans, len(final))
	if err != nil {
		return err
	}
	var zero V
	writeOf := make(map[V]int) // value -> index of its write in ops
	for i, op := range ops {
		if !op.Write {
			continue
		}
		if op.Value == zero {
			return undecided("client %d writes the zero value, which is also the initial value: the register checks need unique written values", op.Client)
		}
		if j, dup := writeOf[op.Value]; dup {
			return undecided("clients %d and %d both write %v: the register checks need unique written values", ops[j].Client, op.Client, op.Value)
		}
		writeOf[op.Value] = i
	}
	g := newOrderGraph(func(i int) string { return fmt.Sprintf("the write of %v by client %d", ops[i].Value, ops[i].Client) })
	for c, idx := range po {
		cur, curWhy := -1, "" // the client's current write (-1: the initial value)
		step := func(k int, op RegisterOp[V]) error {
			what := fmt.Sprintf("client %d's operation %d", c, k)
			if k < 0 {
				what = fmt.Sprintf("client %d's read after quiescence", c)
			}
			if op.Write {
				w := writeOf[op.Value]
				if cur >= 0 {
					g.edge(cur, w, fmt.Sprintf("client %d %s and then writes %v", c, curWhy, op.Value))
				}
				cur, curWhy = w, fmt.Sprintf("writes %v", op.Value)
				return nil
			}
			if op.Value == zero {
				if cur >= 0 {
					return violation("%s reads the initial value after the client %s", what, curWhy)
				}
				return nil
			}
			w, ok := writeOf[op.Value]
			if !ok {
				return violation("%s reads %v, which nobody wrote", what, op.Value)
			}
			if validity && k >= 0 && ops[w].Call > op.Return {
				return violation("%s reads %v, written by a write invoked only after the read returned", what, op.Value)
			}
			if cur >= 0 && cur != w {
				g.edge(cur, w, fmt.Sprintf("client %d %s and then reads %v", c, curWhy, op.Value))
			}
			cur, curWhy = w, fmt.Sprintf("reads %v", op.Value)
			return nil
		}
		for k, i := range idx {
			if err := step(k, ops[i]); err != nil {
				return err
			}
		}
		if c < len(final) {
			if err := step(-1, RegisterOp[V]{Client: c, Value: final[c]}); err != nil {
				return err
			}
		}
	}
	if err := g.acyclic(); err != nil {
		return err
	}
	for i, f := range final {
		if f != final[0] {
			return violation("replicas 0 and %d read %v and %v after quiescence and Sync: they did not converge", i, final[0], f)
		}
	}
	if len(final) > 0 {
		f := final[0]
		if f == zero {
			if len(writeOf) > 0 {
				return violation("every replica reads the initial value after quiescence and Sync, but there were %d writes", len(writeOf))
			}
		} else if out := g.out[writeOf[f]]; len(out) > 0 {
			return violation("every replica reads %v after quiescence and Sync, but %s must be newer: %s", f, g.name(out[0].to), out[0].why)
		}
	}
	return nil
}

// orderGraph is a graph of "must precede" constraints between writes, with
// the reason for each edge, checked for cycles.
type orderGraph struct {
	out  map[int][]orderEdge
	name func(int) string
}

type orderEdge struct {
	to  int
	why string
}

func newOrderGraph(name func(int) string) *orderGraph {
	return &orderGraph{out: make(map[int][]orderEdge), name: name}
}

func (g *orderGraph) edge(from, to int, why string) {
	g.out[from] = append(g.out[from], orderEdge{to, why})
}

// acyclic returns a violation naming a cycle, if there is one.
func (g *orderGraph) acyclic() error {
	const (
		white = iota
		grey
		black
	)
	color := make(map[int]int)
	type frame struct {
		n, next int
	}
	for _, start := range slices.Sorted(maps.Keys(g.out)) {
		if color[start] != white {
			continue
		}
		stack := []frame{{start, 0}}
		color[start] = grey
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if f.next == len(g.out[f.n]) {
				color[f.n] = black
				stack = stack[:len(stack)-1]
				continue
			}
			e := g.out[f.n][f.next]
			f.next++
			switch color[e.to] {
			case white:
				color[e.to] = grey
				stack = append(stack, frame{e.to, 0})
			case grey:
				// The cycle is the stack from e.to to the top, closed by e.
				var why []string
				on := false
				for _, s := range stack {
					if s.n == e.to {
						on = true
					}
					if on {
						ed := g.out[s.n][s.next-1]
						why = append(why, fmt.Sprintf("%s precedes %s (%s)", g.name(s.n), g.name(ed.to), ed.why))
					}
				}
				const show = 6
				if len(why) > show {
					why = append(why[:show], fmt.Sprintf("and %d more", len(why)-show))
				}
				return violation("no order of the writes fits every client's program: %s", strings.Join(why, "; "))
			}
		}
	}
	return nil
}

package check

import (
	"container/heap"
	"fmt"
	"slices"

	"github.com/anishathalye/porcupine"
	"github.com/blossom-dso/blossom/lincheck"
)

// CounterOp is one completed operation on a counter: an Add of Delta, or a
// read (Value) that returned Value.
type CounterOp struct {
	Client       int   // the handle that called it
	Call, Return int64 // invocation and response, in one clock for the history
	Read         bool  // a read; an Add otherwise
	Delta        int64 // what an Add added
	Value        int64 // what a read returned
}

func (op CounterOp) String() string {
	if op.Read {
		return fmt.Sprintf("read → %d", op.Value)
	}
	return fmt.Sprintf("add(%d)", op.Delta)
}

func counterSpans(ops []CounterOp) []span {
	s := make([]span, len(ops))
	for i, op := range ops {
		s[i] = span{op.Client, op.Call, op.Return}
	}
	return s
}

// counterFinals checks the quiescent reads: final[i] is what replica i read
// after every update returned and it called Sync, which must be the sum of
// every delta at every level.
func counterFinals(ops []CounterOp, final []int64) error {
	var total int64
	for _, op := range ops {
		if !op.Read {
			total += op.Delta
		}
	}
	for i, v := range final {
		if v != total {
			return violation("after quiescence and Sync replica %d reads %d, but the adds sum to %d (finals %v)", i, v, total, final)
		}
	}
	return nil
}

// CounterLinearizable checks that ops, followed by the quiescent reads final
// (final[i] read by replica i after every operation returned and Sync), is
// linearizable, with Porcupine and lincheck.CounterModel. An Add returns
// nothing, so its output is left unknown, which the model accepts at any
// value while still adding its delta. Exact, within PorcupineTimeout.
func CounterLinearizable(ops []CounterOp, final []int64) error {
	spans := counterSpans(ops)
	if _, err := programOrder(spans, len(final)); err != nil {
		return err
	}
	hist := make([]porcupine.Operation, 0, len(ops)+len(final))
	for _, op := range ops {
		in, out := lincheck.CounterInput{Add: !op.Read, Delta: op.Delta}, lincheck.CounterOutput{Value: op.Value}
		if !op.Read {
			out = lincheck.CounterOutput{Unknown: true}
		}
		hist = append(hist, porcupine.Operation{ClientId: op.Client, Input: in, Call: op.Call, Output: out, Return: op.Return})
	}
	t := end(spans)
	for i, v := range final {
		hist = append(hist, porcupine.Operation{ClientId: i, Input: lincheck.CounterInput{}, Call: t, Output: lincheck.CounterOutput{Value: v}, Return: t + 1})
	}
	return porcupineVerdict(lincheck.Check(lincheck.CounterModel, hist, PorcupineTimeout))
}

// porcupineVerdict turns a lincheck result into this package's errors.
func porcupineVerdict(r lincheck.Result) error {
	switch r.Verdict {
	case lincheck.Ok:
		return nil
	case lincheck.Illegal:
		return fmt.Errorf("%w: %w", ErrViolation, r.Err())
	}
	return fmt.Errorf("%w: %w", ErrUndecided, r.Err())
}

// CounterSequential checks that ops, with the quiescent reads final, is
// sequentially consistent: one total order of all the operations extends
// every client's program order and makes every read the sum of the adds
// before it. The finals are each client's last read and must equal the sum
// of every delta.
//
// When every Add has the same delta d (the usual increment-only history),
// the check is exact and takes O(n log c) for n operations of c clients: a
// read of v is then placed after exactly v/d adds, which gives each add a
// window of positions (after the client's earlier reads, within its later
// ones), and earliest-deadline-first scheduling of the adds into positions
// decides whether some order fits every window. Otherwise it searches the
// interleavings exactly (searchSC), which is exponential in the number of
// clients and gives up with ErrUndecided beyond SearchBudget states.
func CounterSequential(ops []CounterOp, final []int64) error {
	spans := counterSpans(ops)
	po, err := programOrder(spans, len(final))
	if err != nil {
		return err
	}
	if err := counterFinals(ops, final); err != nil {
		return err
	}
	// Programs with the finals as each client's last read.
	t := end(spans)
	progs := make([][]CounterOp, len(po))
	for c, idx := range po {
		for _, i := range idx {
			progs[c] = append(progs[c], ops[i])
		}
		if c < len(final) {
			progs[c] = append(progs[c], CounterOp{Client: c, Call: t, Return: t + 1, Read: true, Value: final[c]})
		}
	}
	var d int64
	uniform := true
	for _, op := range ops {
		if !op.Read {
			if d == 0 {
				d = op.Delta
			}
			uniform = uniform && op.Delta == d && d != 0
		}
	}
	if !uniform {
		return counterSearch(progs)
	}

	// Uniform deltas: reads become counts of adds; schedule the adds.
	n := 0
	for _, op := range ops {
		if !op.Read {
			n++
		}
	}
	type job struct {
		client, k int // the client's k-th add (from 0)
		lo, hi    int // positions allowed, 1-based
		name      string
	}
	var chains [][]job
	for c, p := range progs {
		var chain []job
		last, lastName, open := 0, "", 0
		for k, op := range p {
			if !op.Read {
				chain = append(chain, job{client: c, k: len(chain), lo: last + 1, hi: n, name: fmt.Sprintf("client %d's %s (its operation %d)", c, op, k)})
				continue
			}
			if d == 0 {
				if op.Value != 0 {
					return violation("client %d reads %d (its operation %d) but there is no add", c, op.Value, k)
				}
				continue
			}
			if op.Value%d != 0 || op.Value/d < 0 || op.Value/d > int64(n) {
				return violation("client %d reads %d (its operation %d), which is no sum of up to %d adds of %d", c, op.Value, k, n, d)
			}
			pos := int(op.Value / d)
			if pos < last {
				return violation("client %d reads %d (its operation %d) after reading %d (%s): reads went backwards", c, op.Value, k, int64(last)*d, lastName)
			}
			last, lastName = pos, fmt.Sprintf("its operation %d", k)
			for ; open < len(chain); open++ {
				chain[open].hi = pos // reads only go forward: the first read after an add bounds it
			}
		}
		chains = append(chains, chain)
	}
	// Earliest deadline first over the heads of the chains.
	next := make([]int, len(chains))
	var waiting, ready jobHeap
	waiting.less = func(a, b int) bool { return chains[a][next[a]].lo < chains[b][next[b]].lo }
	ready.less = func(a, b int) bool { return chains[a][next[a]].hi < chains[b][next[b]].hi }
	for c, ch := range chains {
		if len(ch) > 0 {
			heap.Push(&waiting, c)
		}
	}
	for pos := 1; pos <= n; pos++ {
		for waiting.Len() > 0 && chains[waiting.cs[0]][next[waiting.cs[0]]].lo <= pos {
			heap.Push(&ready, heap.Pop(&waiting))
		}
		if ready.Len() == 0 {
			j := chains[waiting.cs[0]][next[waiting.cs[0]]]
			return violation("no order of the adds consistent with the program orders explains the reads: only %d adds can precede position %d, but every remaining add must come later (e.g. %s, after a read of %d)", pos-1, pos, j.name, int64(j.lo-1)*d)
		}
		c := heap.Pop(&ready).(int)
		j := chains[c][next[c]]
		if j.hi < pos {
			return violation("no order of the adds consistent with the program orders explains the reads: %s must be among the first %d adds (a later read of the same client saw %d), but the reads of the others leave no room for it", j.name, j.hi, int64(j.hi)*d)
		}
		if next[c]++; next[c] < len(chains[c]) {
			heap.Push(&waiting, c)
		}
	}
	return nil
}

// counterSearch decides sequential consistency of the client programs by
// searching their interleavings (searchSC).
func counterSearch(progs [][]CounterOp) error {
	sp := make([][]scOp[int64], len(progs))
	for c, p := range progs {
		for k, op := range p {
			name := fmt.Sprintf("%s (its operation %d)", op, k)
			if op.Read {
				sp[c] = append(sp[c], scOp[int64]{read: true, at: op.Call, name: name, step: func(v int64) (bool, int64) { return v == op.Value, v }})
			} else {
				sp[c] = append(sp[c], scOp[int64]{at: op.Call, name: name, step: func(v int64) (bool, int64) { return true, v + op.Delta }})
			}
		}
	}
	return searchSC(sp, 0, func(int64) string { return "" }, nil, SearchBudget)
}

// jobHeap is a heap of client indices under a comparison that looks at the
// client's next job.
type jobHeap struct {
	cs   []int
	less func(a, b int) bool
}

func (h *jobHeap) Len() int           { return len(h.cs) }
func (h *jobHeap) Less(i, j int) bool { return h.less(h.cs[i], h.cs[j]) }
func (h *jobHeap) Swap(i, j int)      { h.cs[i], h.cs[j] = h.cs[j], h.cs[i] }
func (h *jobHeap) Push(x any)         { h.cs = append(h.cs, x.(int)) }
func (h *jobHeap) Pop() any {
	x := h.cs[len(h.cs)-1]
	h.cs = h.cs[:len(h.cs)-1]
	return x
}

// CounterWeak checks ops, with the quiescent reads final, against the weak
// level: each read returns the sum of a visible set of adds that holds the
// reader's own earlier adds (read-your-writes) and grows from one read of a
// client to the next (monotonic reads), and is made of adds invoked before
// the read returned (validity); after quiescence and Sync every replica
// reads the sum of every delta (convergence).
//
// As a visible set is not observable, each read is checked against bounds:
// with L its client's adds before it and U the adds invoked before it
// returned, the value must lie within sum(L) plus the negative, and plus the
// positive, deltas of U \ L. Between two reads of one client, the difference
// less the client's adds between them must lie within the negative and
// positive deltas of the adds the later read may see and the earlier could
// not; with increments only, that says reads never go back. These
// conditions are necessary, and exact for unit increments up to the order
// of adds within a writer.
func CounterWeak(ops []CounterOp, final []int64) error {
	spans := counterSpans(ops)
	po, err := programOrder(spans, len(final))
	if err != nil {
		return err
	}
	if err := counterFinals(ops, final); err != nil {
		return err
	}
	// Adds by invocation, with prefix sums of their positive and negative
	// deltas, to sum the adds invoked before an instant.
	var adds []CounterOp
	for _, op := range ops {
		if !op.Read {
			adds = append(adds, op)
		}
	}
	slices.SortStableFunc(adds, func(a, b CounterOp) int { return cmpInt(a.Call, b.Call) })
	pos, neg := make([]int64, len(adds)+1), make([]int64, len(adds)+1)
	for i, a := range adds {
		pos[i+1], neg[i+1] = pos[i], neg[i]
		if a.Delta > 0 {
			pos[i+1] += a.Delta
		} else {
			neg[i+1] += a.Delta
		}
	}
	invokedBy := func(t int64) int { // number of adds invoked at or before t
		lo, hi := 0, len(adds)
		for lo < hi {
			m := (lo + hi) / 2
			if adds[m].Call <= t {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return lo
	}
	for c, idx := range po {
		var own, ownPos, ownNeg int64 // the client's adds so far: sum, positive and negative parts
		var prev *CounterOp
		var prevK int
		var prevOwn int64
		for k, i := range idx {
			op := ops[i]
			if !op.Read {
				own += op.Delta
				if op.Delta > 0 {
					ownPos += op.Delta
				} else {
					ownNeg += op.Delta
				}
				continue
			}
			// The adds of the others invoked before the read returned, which
			// may or may not be visible (the client's own are all invoked
			// before, as one client's calls do not overlap).
			u := invokedBy(op.Return)
			othersNeg, othersPos := neg[u]-ownNeg, pos[u]-ownPos
			if op.Value < own+othersNeg || op.Value > own+othersPos {
				return violation("client %d reads %d (its operation %d), outside [%d, %d]: no set of the adds invoked by then that holds its own (summing to %d) sums to it", c, op.Value, k, own+othersNeg, own+othersPos, own)
			}
			// The later read's set holds the earlier's and the client's adds in
			// between; the rest are adds of the others invoked before it
			// returned.
			if prev != nil {
				diff := op.Value - prev.Value - (own - prevOwn)
				if diff < othersNeg || diff > othersPos {
					return violation("client %d reads %d (its operation %d) after reading %d (its operation %d) with its own adds summing to %d in between: the difference %d is no sum of adds of the others invoked by then (within [%d, %d]), so the reads are not monotonic", c, op.Value, k, prev.Value, prevK, own-prevOwn, diff, othersNeg, othersPos)
				}
			}
			opc := op
			prev, prevK, prevOwn = &opc, k, own
		}
	}
	return nil
}

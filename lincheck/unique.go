package lincheck

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// The names of the decision procedures, as Result.Checker gives them.
const (
	// CheckerPorcupine is Result.Checker for a verdict reached by Porcupine
	// (Check), which searches the linearizations of any model and may time
	// out.
	CheckerPorcupine = "porcupine"
	// CheckerUniqueValues is Result.Checker for a verdict reached by
	// CheckUniqueKV, the polynomial-time decision procedure for key-value
	// histories whose puts write unique values.
	CheckerUniqueValues = "unique-values"
)

// ErrNotUniqueKV is wrapped by UniqueKV's error, and by Result.Err for the
// Unknown verdict CheckUniqueKV gives a history it cannot decide.
var ErrNotUniqueKV = errors.New("lincheck: not a key-value history with unique put values")

// UniqueKV returns nil if CheckUniqueKV can decide ops, and otherwise an
// error wrapping ErrNotUniqueKV that names the first offending operation.
// ops can be decided when every Input is a KVInput, the Output of every get
// is a KVOutput or an unknown outcome (see IsUnknownOutcome), and every put
// writes a value other than 0 (the initial value) that no other put to the
// same key writes. Operations on different keys may reuse values.
func UniqueKV(ops []porcupine.Operation) error {
	type kv struct {
		key   string
		value uint64
	}
	seen := make(map[kv]int, len(ops))
	for i, op := range ops {
		in, ok := op.Input.(KVInput)
		if !ok {
			return fmt.Errorf("%w: operation %d has input type %T, want KVInput", ErrNotUniqueKV, i, op.Input)
		}
		if !in.Put {
			if _, ok := op.Output.(KVOutput); !ok && !IsUnknownOutcome(op.Output) {
				return fmt.Errorf("%w: get %d has output type %T, want KVOutput", ErrNotUniqueKV, i, op.Output)
			}
			continue
		}
		if in.Value == 0 {
			return fmt.Errorf("%w: operation %d puts 0, the initial value, to key %q", ErrNotUniqueKV, i, in.Key)
		}
		if j, dup := seen[kv{in.Key, in.Value}]; dup {
			return fmt.Errorf("%w: operations %d and %d both put %d to key %q", ErrNotUniqueKV, j, i, in.Value, in.Key)
		}
		seen[kv{in.Key, in.Value}] = i
	}
	return nil
}

// CheckKV checks a KVModel history for linearizability with the fastest
// procedure that decides it: CheckUniqueKV if UniqueKV(ops) is nil, and
// Porcupine (Check with KVModel) otherwise. Result.Checker says which ran;
// timeout is as for Check.
func CheckKV(ops []porcupine.Operation, timeout time.Duration) Result {
	if UniqueKV(ops) == nil {
		return CheckUniqueKV(ops, timeout)
	}
	return Check(KVModel, ops, timeout)
}

// CheckUniqueKV decides whether ops, a KVModel history, is linearizable, in
// O(n log n) time for n operations, without Porcupine's search. It requires
// that every put write a value unique to its key and never 0, the initial
// value (see UniqueKV); otherwise it returns the verdict Unknown, whose Err
// wraps ErrNotUniqueKV and ErrUnknown. On such input its verdict is Ok or
// Illegal and never depends on timeout, and it agrees with Check(KVModel,
// ops, timeout) whenever that one finishes.
//
// Operations are interpreted as by Check and Recorder.Operations: an
// operation whose Output is an unknown outcome (IsUnknownOutcome) may take
// effect at any point after its Call, or never; a get of unknown outcome
// constrains nothing and is ignored. Operation a precedes b in real time
// when a.Return < b.Call; equal timestamps are concurrent.
//
// For an Illegal verdict, Err names the key, and the operations that
// cannot be ordered, and the Result holds Porcupine's record of that key
// alone (the smallest failing partition), computed with the given timeout
// (DefaultTimeout if timeout <= 0), so that WriteHTML draws it; Elapsed
// includes that run. Partitions is the number of keys.
//
// # Why it is correct
//
// The keys of a key-value map are independent registers, so the history is
// linearizable iff each key's sub-history is. Fix one key. Because its put
// values are unique and not 0, the value of a get names the put it read
// from: the read-from relation is known (Gibbons and Korach's "read-mapped"
// histories, for which they showed linearizability decidable in polynomial
// time). A get of a value that no put to the key wrote is a violation at
// once, and so is a get that returns before its put is called. Put a
// virtual put of 0 at time -∞ (call = return = -∞) and form a cluster for
// each put: the put and the gets that read its value. A put of unknown
// outcome has return +∞.
//
// In any linearization each cluster is contiguous: its put comes first,
// then its gets, and no other put lies between them (a get reads the
// latest put before it); and a get of another cluster cannot lie inside
// either, since its own put would then be a later put before it. So a
// linearization is an order of the clusters with the virtual one first.
// For a cluster A let f(A) be the earliest return and s(A) the latest call
// of its operations. Cluster A can be placed before cluster B unless some
// operation of B precedes some operation of A in real time, that is unless
// f(B) < s(A). Draw the edge B→A when f(B) < s(A), for A ≠ B.
//
//   - Necessary: a linearization orders the clusters along every edge, so
//     the graph is acyclic.
//   - Sufficient: if the graph is acyclic, lay the clusters out in a
//     topological order, each as its put followed by its gets in order of
//     call. Every get reads the latest put before it. Real time is
//     respected across clusters by construction of the edges, and within a
//     cluster because no get returns before its put is called and gets
//     ordered by call respect a.Return < b.Call.
//
// The graph has a cycle only if it has one of length two. Take a cycle and
// in it the cluster A with the least f, its predecessor P (f(P) < s(A))
// and P's predecessor Q (f(Q) < s(P)). Then f(A) ≤ f(Q) < s(P), so A→P as
// well as P→A. (For a cycle of two, that is it.) So the key is linearizable
// iff no two clusters A ≠ B have f(A) < s(B) and f(B) < s(A): the zones
// [f, s] of two "forward" clusters (f < s) may not overlap, and no
// cluster's zone may lie inside a forward zone, as in Gibbons and Korach.
// (A put of unknown outcome that no get read has f = +∞, so no edge leaves
// it: it is linearized last, that is never observed.)
//
// Sorting the clusters by f and keeping, for each prefix, the cluster B
// with the greatest s finds such a pair in O(n log n): for each A, look for
// B ≠ A among the clusters with f(B) < s(A) with s(B) > f(A). Taking only
// the greatest s misses nothing: if A, B form a pair with s(A) ≥ s(B), the
// search from B finds a pair with the greatest s of its prefix unless that
// is B itself, in which case s(A) = s(B), A's prefix is B's, and the
// search from A finds B.
func CheckUniqueKV(ops []porcupine.Operation, timeout time.Duration) Result {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	start := time.Now()
	r := Result{Verdict: Unknown, Operations: len(ops), Timeout: timeout, Checker: CheckerUniqueValues}
	if err := UniqueKV(ops); err != nil {
		r.unsupported = err
		r.Elapsed = time.Since(start)
		return r
	}
	parts := KVModel.Partition(ops)
	r.Partitions = len(parts)
	r.Model = KVModel
	failing, violation := -1, ""
	for p, part := range parts {
		if v := decideRegister(part); v != "" && (failing < 0 || len(part) < len(parts[failing])) {
			failing, violation = p, v
		}
	}
	if failing < 0 {
		r.Verdict = Ok
		r.Elapsed = time.Since(start)
		return r
	}
	part := parts[failing]
	r.Verdict = Illegal
	res, info := porcupine.CheckOperationsVerbose(KVModel, part, timeout)
	r.Info = info
	r.violation = fmt.Sprintf("key %q (%d operations): %s", kvInput(part[0].Input).Key, len(part), violation)
	switch res {
	case porcupine.Ok:
		r.violation += " (Porcupine finds this key linearizable: the checkers disagree, a bug in lincheck)"
	case porcupine.Unknown:
		r.violation += fmt.Sprintf(" (Porcupine timed out on this key after %v; its visualization shows partial linearizations)", timeout)
	}
	r.Elapsed = time.Since(start)
	return r
}

// cluster is a put (or the virtual put of the initial value) with the gets
// that read its value.
type cluster struct {
	put      int    // index of the put in the partition, -1 for the initial value
	value    uint64 // the value it writes
	f, s     int64  // earliest return and latest call of its operations
	fOp, sOp int    // the operations with return f and call s, -1 for the virtual put
}

// decideRegister decides one key's history, which must satisfy UniqueKV,
// as described at CheckUniqueKV. It returns "" if it is linearizable, and
// otherwise what is wrong.
func decideRegister(part []porcupine.Operation) string {
	const negInf, posInf = int64(math.MinInt64), int64(math.MaxInt64)
	ret := func(op porcupine.Operation) int64 {
		if IsUnknownOutcome(op.Output) {
			return posInf
		}
		return op.Return
	}
	clusters := []cluster{{put: -1, f: negInf, s: negInf, fOp: -1, sOp: -1}}
	byValue := map[uint64]int{0: 0}
	for i, op := range part {
		if in := kvInput(op.Input); in.Put {
			byValue[in.Value] = len(clusters)
			clusters = append(clusters, cluster{put: i, value: in.Value, f: ret(op), s: op.Call, fOp: i, sOp: i})
		}
	}
	for i, op := range part {
		if kvInput(op.Input).Put || IsUnknownOutcome(op.Output) {
			continue
		}
		c, ok := byValue[kvOutput(op.Output).Value]
		if !ok {
			return describeOp(part, i) + " returns a value that no put to its key wrote"
		}
		cl := &clusters[c]
		if cl.put >= 0 && op.Return < part[cl.put].Call {
			return fmt.Sprintf("%s returns before %s is called", describeOp(part, i), describeOp(part, cl.put))
		}
		if op.Return < cl.f {
			cl.f, cl.fOp = op.Return, i
		}
		if op.Call > cl.s {
			cl.s, cl.sOp = op.Call, i
		}
	}
	slices.SortFunc(clusters, func(a, b cluster) int { return cmp.Compare(a.f, b.f) })
	// best[i]: the cluster with the greatest s among clusters[:i+1].
	best := make([]int, len(clusters))
	for i := range clusters {
		best[i] = i
		if i > 0 && clusters[best[i-1]].s >= clusters[i].s {
			best[i] = best[i-1]
		}
	}
	for a := range clusters {
		// The clusters b with f(b) < s(a) are clusters[:n]; b → a.
		n := sort.Search(len(clusters), func(i int) bool { return clusters[i].f >= clusters[a].s })
		if n == 0 {
			continue
		}
		if b := best[n-1]; b != a && clusters[b].s > clusters[a].f {
			return describeCycle(part, clusters[a], clusters[b])
		}
	}
	return ""
}

// describeCycle explains why clusters a and b, with f(b) < s(a) and f(a) <
// s(b), cannot be ordered.
func describeCycle(part []porcupine.Operation, a, b cluster) string {
	name := func(c cluster) string {
		if c.put < 0 {
			return "the initial value 0"
		}
		return fmt.Sprintf("put %d", c.value)
	}
	why := func(x, y cluster) string {
		if x.fOp < 0 {
			return "the initial value precedes every put"
		}
		return fmt.Sprintf("%s returns before %s is called", describeOp(part, x.fOp), describeOp(part, y.sOp))
	}
	return fmt.Sprintf("%s and %s (each with the gets that read it) must each take effect before the other: %s, and %s",
		name(a), name(b), why(b, a), why(a, b))
}

// describeOp names operation i of part for a violation message.
func describeOp(part []porcupine.Operation, i int) string {
	op := part[i]
	when := fmt.Sprintf("%d..%d", op.Call, op.Return)
	if IsUnknownOutcome(op.Output) {
		when = fmt.Sprintf("%d..?", op.Call)
	}
	return fmt.Sprintf("%s (client %d, %s)", KVModel.DescribeOperation(op.Input, op.Output), op.ClientId, when)
}

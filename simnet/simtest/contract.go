package simtest

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/simnet"
)

// DrainTime is the quiescent period, in virtual microseconds, that a run of
// a protocol with the Weak contract gets after its clients finish (and the
// faults have healed), before convergence is checked.
const DrainTime = 5_000_000

// ErrContract is wrapped by every violation that CheckSequential and
// CheckWeak report.
var ErrContract = errors.New("simtest: contract violated")

// ForContract returns cfg prepared for the checks of the order contract
// its protocol declares (protocols.Spec.Contract): the executions recorded
// for the contracts weaker than Linearizable, and a drain of DrainTime for
// Weak and Merge unless cfg sets one.
func ForContract(cfg simnet.Config) (simnet.Config, protocols.Contract, error) {
	spec, err := protocols.Lookup(cfg.Protocol)
	if err != nil {
		return cfg, 0, err
	}
	if spec.Contract != protocols.Linearizable {
		cfg.RecordExecutions = true
	}
	if (spec.Contract == protocols.Weak || spec.Contract == protocols.Merge) && cfg.Drain == 0 {
		cfg.Drain = DrainTime
	}
	return cfg, spec.Contract, nil
}

// CheckContract checks res, a run of cfg prepared by ForContract, against
// contract k: the order contract and linearizability for Linearizable,
// the order contract and CheckSequential for Sequential, CheckWeak for
// Weak, CheckMerge for Merge. Liveness is checked apart (Result.LivenessError).
func CheckContract(res *simnet.Result, k protocols.Contract) error {
	switch k {
	case protocols.Sequential:
		if err := res.OrderError(); err != nil {
			return err
		}
		return CheckSequential(res)
	case protocols.Weak:
		return CheckWeak(res)
	case protocols.Merge:
		return CheckMerge(res)
	}
	if err := res.OrderError(); err != nil {
		return err
	}
	return res.CheckLinearizable(LinTimeout).Err()
}

// opIndex maps a workload command's id to its operation in res.History:
// each client's operations are its sequence numbers 1, 2, ... in
// invocation order.
func opIndex(res *simnet.Result) map[protocols.CommandID]int {
	idx := make(map[protocols.CommandID]int, len(res.History))
	seq := map[int]uint64{}
	for i, op := range res.History {
		seq[op.Client]++
		idx[protocols.CommandID{Client: uint64(op.Client) + 1, Seq: seq[op.Client]}] = i
	}
	return idx
}

// puts returns, for one incarnation's executions, the history indexes of
// the workload puts in execution order.
func puts(res *simnet.Result, idx map[protocols.CommandID]int, execs []protocols.CommandID) []int {
	var out []int
	for _, id := range execs {
		if i, ok := idx[id]; ok && res.History[i].Put {
			out = append(out, i)
		}
	}
	return out
}

// CheckSequential checks that res (run with RecordExecutions) is
// sequentially consistent, with the order in which the replicas executed
// the updates as the witness: the longest incarnation's sequence of
// executed puts is the total order U, every other incarnation's sequence
// must be a subsequence of U, and each client's operations, in program
// order, must fit at non-decreasing positions of U — a completed put at
// its own position, after everything the client observed before it, and a
// completed read at a position where the last put to its key in U wrote
// the value it returned (0 before the key's first put). Operations with an
// unknown outcome constrain nothing. The positions are chosen greedily
// (the earliest that fits), which finds a fit whenever one exists.
func CheckSequential(res *simnet.Result) error {
	idx := opIndex(res)
	var order []int
	var all [][]int
	for _, st := range res.PerNode {
		for _, inc := range st.Executions {
			p := puts(res, idx, inc)
			all = append(all, p)
			if len(p) > len(order) {
				order = p
			}
		}
	}
	if len(all) == 0 {
		return fmt.Errorf("%w: seed %d: no executions recorded (Config.RecordExecutions)", ErrContract, res.Seed)
	}
	pos := make(map[int]int, len(order)) // history index -> position 1..len(order)
	for p, i := range order {
		pos[i] = p + 1
	}
	for _, seq := range all {
		last := 0
		for _, i := range seq {
			p, ok := pos[i]
			if !ok || p <= last {
				return fmt.Errorf("%w: seed %d: the replicas executed the updates in different orders (put %d)", ErrContract, res.Seed, res.History[i].Value)
			}
			last = p
		}
	}
	// Per key, the positions of its puts in U, ascending.
	keyPuts := map[string][]int{}
	for p, i := range order {
		k := res.History[i].Key
		keyPuts[k] = append(keyPuts[k], p+1)
	}
	at := map[int]int{} // client -> position it has observed
	for i, op := range res.History {
		if op.Outcome != simnet.OutcomeOK {
			continue
		}
		cur := at[op.Client]
		if op.Put {
			p, ok := pos[i]
			if !ok {
				return fmt.Errorf("%w: seed %d: client %d's put %d to %q was answered but no replica executed it", ErrContract, res.Seed, op.Client, op.Value, op.Key)
			}
			if p <= cur {
				return fmt.Errorf("%w: seed %d: client %d's put %d to %q is ordered at %d, before the state %d the client had already observed", ErrContract, res.Seed, op.Client, op.Value, op.Key, p, cur)
			}
			at[op.Client] = p
			continue
		}
		kp := keyPuts[op.Key]
		lo, hi := 0, len(order)
		if op.Output == 0 {
			if len(kp) > 0 {
				hi = kp[0] - 1
			}
		} else {
			w := slices.IndexFunc(kp, func(p int) bool { return res.History[order[p-1]].Value == op.Output })
			if w < 0 {
				return fmt.Errorf("%w: seed %d: client %d read %d from %q, a value no executed put to %q wrote", ErrContract, res.Seed, op.Client, op.Output, op.Key, op.Key)
			}
			lo = kp[w]
			if w+1 < len(kp) {
				hi = kp[w+1] - 1
			}
		}
		q := max(lo, cur)
		if q > hi {
			return fmt.Errorf("%w: seed %d: client %d read %d from %q at node %d (µs %d): that value held in positions %d..%d of the update order, but the client had already observed position %d (a stale read)", ErrContract, res.Seed, op.Client, op.Output, op.Key, op.Node, op.Call, lo, hi, cur)
		}
		at[op.Client] = q
	}
	return nil
}

// CheckWeak checks that res (run with RecordExecutions and a drain) keeps
// the Weak contract (protocols.Weak). From the history and the executions
// it checks necessary conditions, each of which a correct last-writer-wins
// protocol meets:
//
//   - no command executes twice in an incarnation;
//   - every read returns 0 or the value of a put to its key invoked before
//     the read returned (a merge of issued updates);
//   - arbitration: the order in which each incarnation executed the puts
//     of a key, merged over all incarnations, is acyclic (one arbitration
//     order explains every replica);
//   - within a session (a client's run of completed operations at one
//     node), a read never returns 0 or a value arbitrated before the
//     client's own last put to the key or before its last read of the key
//     (read-your-writes, monotonic reads);
//   - convergence: after the drain, every live node holds the same
//     key-value map, and for every key no acknowledged put to it is
//     arbitrated after the value all nodes hold (no update lost).
func CheckWeak(res *simnet.Result) error {
	for _, v := range res.OrderViolations {
		if v.Kind == "duplicate" {
			return fmt.Errorf("%w: seed %d: %v", ErrContract, res.Seed, v)
		}
	}
	idx := opIndex(res)
	// Values of puts: key -> value -> invocation time.
	written := map[string]map[uint64]int64{}
	for _, op := range res.History {
		if op.Put {
			if written[op.Key] == nil {
				written[op.Key] = map[uint64]int64{}
			}
			written[op.Key][op.Value] = op.Call
		}
	}
	for _, op := range res.History {
		if op.Put || op.Outcome != simnet.OutcomeOK || op.Output == 0 {
			continue
		}
		call, ok := written[op.Key][op.Output]
		if !ok || call > op.Return {
			return fmt.Errorf("%w: seed %d: client %d read %d from %q, a value no put to %q issued before the read returned", ErrContract, res.Seed, op.Client, op.Output, op.Key, op.Key)
		}
	}
	// Arbitration graph per key over put values: an edge a -> b when an
	// incarnation executed b right after a among the key's puts.
	after := map[string]map[uint64][]uint64{}
	for _, st := range res.PerNode {
		for _, inc := range st.Executions {
			last := map[string]uint64{}
			for _, i := range puts(res, idx, inc) {
				op := res.History[i]
				if a, ok := last[op.Key]; ok && a != op.Value {
					if after[op.Key] == nil {
						after[op.Key] = map[uint64][]uint64{}
					}
					if !slices.Contains(after[op.Key][a], op.Value) {
						after[op.Key][a] = append(after[op.Key][a], op.Value)
					}
				}
				last[op.Key] = op.Value
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if v, ok := cyclic(after[k]); ok {
			return fmt.Errorf("%w: seed %d: key %q: the replicas executed its puts in conflicting orders (a cycle through value %d): no arbitration order explains them", ErrContract, res.Seed, k, v)
		}
	}
	// before reports whether a is arbitrated before b (a path a -> b).
	before := func(k string, a, b uint64) bool { return reaches(after[k], a, b) }
	// Sessions.
	type sess struct {
		node protocols.NodeID
		seen map[string]uint64 // key -> last value written or read
	}
	sessions := map[int]*sess{}
	for _, op := range res.History {
		s := sessions[op.Client]
		if op.Outcome != simnet.OutcomeOK {
			delete(sessions, op.Client)
			continue
		}
		if s == nil || s.node != op.Node {
			s = &sess{node: op.Node, seen: map[string]uint64{}}
			sessions[op.Client] = s
		}
		if op.Put {
			s.seen[op.Key] = op.Value
			continue
		}
		prev, ok := s.seen[op.Key]
		if ok && prev != 0 && op.Output != prev && (op.Output == 0 || before(op.Key, op.Output, prev)) {
			return fmt.Errorf("%w: seed %d: client %d read %d from %q at node %d (µs %d) after it had written or read %d there, which is arbitrated later (read-your-writes / monotonic reads)", ErrContract, res.Seed, op.Client, op.Output, op.Key, op.Node, op.Call, prev)
		}
		s.seen[op.Key] = op.Output
	}
	// Convergence.
	var ref map[string]uint64
	var refNode protocols.NodeID
	for _, st := range res.PerNode {
		if !st.Up {
			continue
		}
		if ref == nil {
			ref, refNode = st.State, st.Node
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(written)) {
			if ref[k] != st.State[k] {
				return fmt.Errorf("%w: seed %d: no convergence: after the drain node %d holds %d for %q, node %d holds %d", ErrContract, res.Seed, refNode, ref[k], k, st.Node, st.State[k])
			}
		}
	}
	if ref == nil {
		return nil
	}
	for _, op := range res.History {
		if !op.Put || op.Outcome != simnet.OutcomeOK {
			continue
		}
		f := ref[op.Key]
		if f != op.Value && (f == 0 || before(op.Key, f, op.Value)) {
			return fmt.Errorf("%w: seed %d: update lost: client %d's acknowledged put %d to %q is arbitrated after %d, the value every node holds after the drain", ErrContract, res.Seed, op.Client, op.Value, op.Key, f)
		}
	}
	return nil
}

// cyclic reports a value on a cycle of g, if any.
func cyclic(g map[uint64][]uint64) (uint64, bool) {
	const (
		white = iota
		grey
		black
	)
	color := map[uint64]int{}
	for _, start := range slices.Sorted(maps.Keys(g)) {
		if color[start] != white {
			continue
		}
		// Iterative depth-first search.
		type frame struct {
			v uint64
			i int
		}
		stack := []frame{{v: start}}
		color[start] = grey
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if f.i < len(g[f.v]) {
				w := g[f.v][f.i]
				f.i++
				switch color[w] {
				case grey:
					return w, true
				case white:
					color[w] = grey
					stack = append(stack, frame{v: w})
				}
				continue
			}
			color[f.v] = black
			stack = stack[:len(stack)-1]
		}
	}
	return 0, false
}

// reaches reports whether g has a path from a to b.
func reaches(g map[uint64][]uint64, a, b uint64) bool {
	seen := map[uint64]bool{a: true}
	stack := []uint64{a}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, w := range g[v] {
			if w == b {
				return true
			}
			if !seen[w] {
				seen[w] = true
				stack = append(stack, w)
			}
		}
	}
	return false
}

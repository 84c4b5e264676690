package simtest

import (
	"fmt"
	"maps"
	"slices"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/simnet"
)

// CheckMerge checks that res (run with RecordExecutions and a drain) keeps
// the Merge contract (protocols.Merge), whose replicas execute every update
// once and in its origin's order, for state machines whose updates commute.
// The simulator's key-value puts do not commute, so the check is on the
// executions, not on the states:
//
//   - no command executes twice in an incarnation;
//   - read-your-writes and monotonic reads: within a session (a client's
//     run of completed operations at one node), the incarnation that
//     executed a read had executed, before it, every put of the session
//     and every put it had executed before the session's previous read
//     there (its visible set only grows);
//   - convergence: after the drain every live node's last incarnation
//     executed the same set of puts, which holds every acknowledged put
//     (every update counts everywhere).
func CheckMerge(res *simnet.Result) error {
	for _, v := range res.OrderViolations {
		if v.Kind == "duplicate" {
			return fmt.Errorf("%w: seed %d: %v", ErrContract, res.Seed, v)
		}
	}
	idx := opIndex(res)
	ids := make([]protocols.CommandID, len(res.History))
	for id, i := range idx {
		ids[i] = id
	}
	// Where each incarnation of each node executed each command.
	type inc struct {
		pos  map[protocols.CommandID]int
		puts []int // history indexes of the puts, in execution order
	}
	incs := map[protocols.NodeID][]inc{}
	for _, st := range res.PerNode {
		for _, ex := range st.Executions {
			in := inc{pos: make(map[protocols.CommandID]int, len(ex)), puts: puts(res, idx, ex)}
			for p, id := range ex {
				in.pos[id] = p
			}
			incs[st.Node] = append(incs[st.Node], in)
		}
	}
	// Sessions: a read must follow, in the incarnation that served it, the
	// session's puts and what the session's previous read saw.
	type sess struct {
		node protocols.NodeID
		puts []int // history indexes of the session's puts
		last int   // history index of the session's last read, -1 if none
	}
	sessions := map[int]*sess{}
	for i, op := range res.History {
		s := sessions[op.Client]
		if op.Outcome != simnet.OutcomeOK {
			delete(sessions, op.Client)
			continue
		}
		if s == nil || s.node != op.Node {
			s = &sess{node: op.Node, last: -1}
			sessions[op.Client] = s
		}
		if op.Put {
			s.puts = append(s.puts, i)
			continue
		}
		for _, in := range incs[op.Node] {
			rp, ok := in.pos[ids[i]]
			if !ok {
				continue
			}
			for _, w := range s.puts {
				if wp, ok := in.pos[ids[w]]; !ok || wp > rp {
					return fmt.Errorf("%w: seed %d: client %d's read of %q at node %d (µs %d) did not see its own put %d there (read-your-writes)", ErrContract, res.Seed, op.Client, op.Key, op.Node, op.Call, res.History[w].Value)
				}
			}
			if s.last >= 0 {
				if lp, ok := in.pos[ids[s.last]]; ok {
					for _, w := range in.puts {
						if wp := in.pos[ids[w]]; wp < lp && wp > rp {
							return fmt.Errorf("%w: seed %d: client %d's read of %q at node %d (µs %d) missed put %d, which its previous read there had seen (monotonic reads)", ErrContract, res.Seed, op.Client, op.Key, op.Node, op.Call, res.History[w].Value)
						}
					}
				}
			}
		}
		s.last = i
	}
	// Convergence.
	var ref map[int]bool
	var refNode protocols.NodeID
	for _, st := range res.PerNode {
		if !st.Up || len(incs[st.Node]) == 0 {
			continue
		}
		last := incs[st.Node][len(incs[st.Node])-1]
		got := make(map[int]bool, len(last.puts))
		for _, w := range last.puts {
			got[w] = true
		}
		if ref == nil {
			ref, refNode = got, st.Node
			continue
		}
		for _, w := range slices.Sorted(maps.Keys(ref)) {
			if !got[w] {
				return fmt.Errorf("%w: seed %d: no convergence: after the drain node %d executed client %d's put %d to %q, node %d did not", ErrContract, res.Seed, refNode, res.History[w].Client, res.History[w].Value, res.History[w].Key, st.Node)
			}
		}
		for _, w := range slices.Sorted(maps.Keys(got)) {
			if !ref[w] {
				return fmt.Errorf("%w: seed %d: no convergence: after the drain node %d executed client %d's put %d to %q, node %d did not", ErrContract, res.Seed, st.Node, res.History[w].Client, res.History[w].Value, res.History[w].Key, refNode)
			}
		}
	}
	if ref == nil {
		return nil
	}
	for i, op := range res.History {
		if op.Put && op.Outcome == simnet.OutcomeOK && !ref[i] {
			return fmt.Errorf("%w: seed %d: update lost: client %d's acknowledged put %d to %q was not executed at node %d by the end of the drain", ErrContract, res.Seed, op.Client, op.Value, op.Key, refNode)
		}
	}
	return nil
}

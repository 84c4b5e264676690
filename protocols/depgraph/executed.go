package depgraph

import (
	"slices"

	"github.com/blossom-dso/blossom/protocols"
)

// Executed returns the dots of node that have passed execution: every seq
// in 1..upto, plus the seqs in above (sorted, each above upto+1). A
// protocol's checkpoint records it, so that a restarted replica does not
// execute those commands again (RestoreExecuted).
func (g *Graph) Executed(node protocols.NodeID) (upto uint64, above []uint64) {
	p := g.done[node]
	if p == nil {
		return 0, nil
	}
	for s := range p.above {
		above = append(above, s)
	}
	slices.Sort(above)
	return p.upto, above
}

// RestoreExecuted records that the dots (node, 1..upto) and (node, s) for s
// in above have passed execution, without executing them: it restores what
// Executed returned, on a graph restarted from a checkpoint. Later commits
// that depend on those dots find them executed, and a later Commit of one of
// them is ignored. Call it before committing any dot of node; values at or
// below what the graph already knows are ignored, and the result is
// normalized (above entries that extend the prefix join it).
func (g *Graph) RestoreExecuted(node protocols.NodeID, upto uint64, above []uint64) {
	p := g.done[node]
	if p == nil {
		p = &prefix{}
		g.done[node] = p
	}
	p.upto = max(p.upto, upto)
	for _, s := range above {
		if s > p.upto {
			if p.above == nil {
				p.above = map[uint64]struct{}{}
			}
			p.above[s] = struct{}{}
		}
	}
	for s := range p.above {
		if s <= p.upto {
			delete(p.above, s)
		}
	}
	for {
		if _, ok := p.above[p.upto+1]; !ok {
			break
		}
		delete(p.above, p.upto+1)
		p.upto++
	}
}

package simnet

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/quorum"
)

// BestLeader returns the node a leader-based protocol serves its clients
// fastest from, under c's latency model and sites: the node L minimising
// the mean over every node's site s of 2·d(s,L) + 2·d_q(L), where d is the
// one-way delay (a client's replica forwards to the leader and the answer
// comes back) and d_q(L) is the delay from L to the q-th closest replica,
// L itself counted first, q the protocol's phase-2 quorum (f+1 for fpaxos,
// a majority otherwise). Ties go to the lowest id.
func BestLeader(c Config) (protocols.NodeID, error) {
	rc, err := c.resolve()
	if err != nil {
		return 0, err
	}
	return bestLeader(rc), nil
}

func bestLeader(rc *resolved) protocols.NodeID {
	n := len(rc.sites)
	base := rc.links.base
	q := quorum.Majority(n)
	if rc.Protocol == "fpaxos" {
		q = quorum.FlexiblePhase2(rc.F)
	}
	best, bestCost := 0, int64(-1)
	row := make([]int64, n)
	for l := range n {
		copy(row, base[l*n:(l+1)*n])
		row[l] = 0
		slices.Sort(row)
		cost := int64(0)
		for s := range n {
			cost += 2*base[s*n+l] + 2*row[min(q, n)-1]
		}
		if bestCost < 0 || cost < bestCost {
			best, bestCost = l, cost
		}
	}
	return protocols.NodeID(best + 1)
}

// leaderOf resolves Config.Leader: 0 (none), bestLeader, or the node named.
func leaderOf(rc *resolved) (protocols.NodeID, error) {
	switch rc.Leader {
	case "":
		return 0, nil
	case "best":
		return bestLeader(rc), nil
	}
	id, err := strconv.Atoi(rc.Leader)
	if err != nil || id < 1 || id > len(rc.sites) {
		return 0, fmt.Errorf("%w: leader %q: want best or a node id 1..%d", ErrConfig, rc.Leader, len(rc.sites))
	}
	return protocols.NodeID(id), nil
}

// initialLeader is leaderOf for a resolved (hence valid) configuration.
func (s *sim) initialLeader(rc *resolved) protocols.NodeID {
	id, _ := leaderOf(rc)
	return id
}

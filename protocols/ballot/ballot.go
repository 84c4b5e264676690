// Package ballot implements Paxos ballot numbers owned by replicas.
package ballot

import (
	"fmt"
	"slices"

	"github.com/blossom-dso/blossom/protocols"
)

// Ballot is a Paxos ballot: a round number and the replica that owns it.
// Ballots are totally ordered by round, then by owner, so two replicas never
// use the same ballot. The zero Ballot is below every ballot a replica uses.
type Ballot struct {
	Round uint64
	Node  protocols.NodeID
}

// Less reports whether b is ordered before c.
func (b Ballot) Less(c Ballot) bool {
	if b.Round != c.Round {
		return b.Round < c.Round
	}
	return b.Node < c.Node
}

// IsZero reports whether b is the zero ballot.
func (b Ballot) IsZero() bool { return b == Ballot{} }

// Next returns the smallest ballot owned by node that is above b.
func (b Ballot) Next(node protocols.NodeID) Ballot {
	if node > b.Node {
		return Ballot{Round: b.Round, Node: node}
	}
	return Ballot{Round: b.Round + 1, Node: node}
}

// Max returns the larger of b and c.
func Max(b, c Ballot) Ballot {
	if b.Less(c) {
		return c
	}
	return b
}

// String formats the ballot as round.node.
func (b Ballot) String() string { return fmt.Sprintf("%d.%d", b.Round, b.Node) }

// MaxAhead bounds how far the round of a plausible ballot may run ahead of
// the receiver's own: real rounds grow by one per campaign, so a ballot
// further ahead comes from a buggy or mismatched peer, and adopting it
// would bring the round counter near overflow (Next would wrap around).
const MaxAhead = 1 << 32

// Plausible reports whether an honest peer could send b to a replica whose
// highest ballot is cur: b is owned by one of members and its round is at
// most MaxAhead above cur's. The zero ballot is not plausible (its owner
// is no member).
func Plausible(b, cur Ballot, members []protocols.NodeID) bool {
	return b.Round <= cur.Round+MaxAhead && slices.Contains(members, b.Node)
}

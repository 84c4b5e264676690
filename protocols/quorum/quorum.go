// Package quorum holds the quorum-size rules of every Blossom protocol and a
// tracker that counts distinct acknowledgements. Sizes are derived from n, f
// and e here and nowhere else.
package quorum

import (
	"slices"

	"github.com/blossom-dso/blossom/protocols"
)

// Majority is the smallest strict majority of n: n/2+1.
func Majority(n int) int { return n/2 + 1 }

// FlexiblePhase1 is the phase-1 (leader election) quorum of Flexible Paxos
// that tolerates f crashes: n−f. Any phase-1 quorum intersects any phase-2
// quorum because (n−f) + (f+1) > n.
func FlexiblePhase1(n, f int) int { return n - f }

// FlexiblePhase2 is the phase-2 (accept) quorum of Flexible Paxos that
// tolerates f crashes: f+1.
func FlexiblePhase2(f int) int { return f + 1 }

// EPaxosFast is the fast-path quorum of EPaxos* with n replicas that keeps
// its fast path under e failures: n−e, coordinator included.
func EPaxosFast(n, e int) int { return n - e }

// EPaxosSlow is the slow-path and recovery quorum of EPaxos* tolerating f
// crashes: n−f.
func EPaxosSlow(n, f int) int { return n - f }

// EPaxosDefaultE is the e of the original EPaxos for f crashes: ⌈(f+1)/2⌉.
func EPaxosDefaultE(f int) int { return (f + 2) / 2 }

// AtlasFast is Atlas's fast quorum: ⌊n/2⌋+f, coordinator included.
func AtlasFast(n, f int) int { return n/2 + f }

// AtlasSlow is Atlas's slow-path (Flexible Paxos phase 2) quorum: f+1.
func AtlasSlow(f int) int { return f + 1 }

// AtlasRecovery is Atlas's recovery quorum: n−f.
func AtlasRecovery(n, f int) int { return n - f }

// Tracker counts distinct nodes that acknowledged something until a
// threshold is reached. The zero value is unusable; use NewTracker. The
// first nodes added are kept inside the tracker, so that a tracker of a
// small cluster allocates nothing.
type Tracker struct {
	need  int
	n     int
	small [smallNodes]protocols.NodeID
	more  []protocols.NodeID // every node added, once there are more than smallNodes
}

// smallNodes is how many nodes a Tracker holds without allocating.
const smallNodes = 7

// NewTracker returns a tracker that is Reached once need distinct nodes
// have been added.
func NewTracker(need int) Tracker { return Tracker{need: need} }

// Add records an acknowledgement from id and reports whether it was new.
// Duplicates (the network may duplicate messages) are ignored.
func (t *Tracker) Add(id protocols.NodeID) bool {
	if t.Has(id) {
		return false
	}
	switch {
	case t.n < smallNodes:
		t.small[t.n] = id
	case t.n == smallNodes:
		t.more = append(append(make([]protocols.NodeID, 0, 2*smallNodes), t.small[:]...), id)
	default:
		t.more = append(t.more, id)
	}
	t.n++
	return true
}

// Has reports whether id has been added.
func (t *Tracker) Has(id protocols.NodeID) bool { return slices.Contains(t.Nodes(), id) }

// Count is the number of distinct nodes added.
func (t *Tracker) Count() int { return t.n }

// Need is the threshold.
func (t *Tracker) Need() int { return t.need }

// Reached reports whether at least Need distinct nodes have been added.
func (t *Tracker) Reached() bool { return t.n >= t.need }

// Nodes returns the nodes added so far, in the order they were added. The
// caller must not modify the result, which may alias the tracker: it is
// valid until the tracker changes or is copied.
func (t *Tracker) Nodes() []protocols.NodeID {
	if t.n > smallNodes {
		return t.more
	}
	return t.small[:t.n:t.n]
}

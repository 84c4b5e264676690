package quorum

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// TestQuorumSizes pins every quorum size for n = 3..13 and f = 1, 2 to a
// hand-written table, and checks the intersection each protocol's safety
// argument needs.
func TestQuorumSizes(t *testing.T) {
	type row struct {
		n, f                 int
		majority, p1, p2     int
		atlasFast, atlasSlow int
	}
	rows := []row{
		{3, 1, 2, 2, 2, 2, 2},
		{4, 1, 3, 3, 2, 3, 2},
		{5, 1, 3, 4, 2, 3, 2},
		{5, 2, 3, 3, 3, 4, 3},
		{6, 1, 4, 5, 2, 4, 2},
		{6, 2, 4, 4, 3, 5, 3},
		{7, 1, 4, 6, 2, 4, 2},
		{7, 2, 4, 5, 3, 5, 3},
		{8, 1, 5, 7, 2, 5, 2},
		{8, 2, 5, 6, 3, 6, 3},
		{9, 1, 5, 8, 2, 5, 2},
		{9, 2, 5, 7, 3, 6, 3},
		{10, 1, 6, 9, 2, 6, 2},
		{10, 2, 6, 8, 3, 7, 3},
		{11, 1, 6, 10, 2, 6, 2},
		{11, 2, 6, 9, 3, 7, 3},
		{12, 1, 7, 11, 2, 7, 2},
		{12, 2, 7, 10, 3, 8, 3},
		{13, 1, 7, 12, 2, 7, 2},
		{13, 2, 7, 11, 3, 8, 3},
	}
	for _, r := range rows {
		t.Run(fmt.Sprintf("n=%d,f=%d", r.n, r.f), func(t *testing.T) {
			require.Equal(t, r.majority, Majority(r.n))
			require.Equal(t, r.p1, FlexiblePhase1(r.n, r.f))
			require.Equal(t, r.p2, FlexiblePhase2(r.f))
			require.Equal(t, r.atlasFast, AtlasFast(r.n, r.f))
			require.Equal(t, r.atlasSlow, AtlasSlow(r.f))
			require.Equal(t, r.n-r.f, AtlasRecovery(r.n, r.f))
			// Any two majorities intersect, and so do a Flexible Paxos
			// phase-1 and phase-2 quorum.
			require.Greater(t, 2*Majority(r.n), r.n)
			require.Greater(t, FlexiblePhase1(r.n, r.f)+FlexiblePhase2(r.f), r.n)
			// The quorums stay available with f replicas down.
			require.LessOrEqual(t, FlexiblePhase1(r.n, r.f), r.n-r.f)
			require.LessOrEqual(t, AtlasFast(r.n, r.f), r.n)
		})
	}
}

// TestEPaxosQuorums pins the EPaxos* sizes for the settings the protocol
// notes name and checks n >= max(2e+f-1, 2f+1) for the defaults.
func TestEPaxosQuorums(t *testing.T) {
	for _, c := range []struct{ n, f, e, fast, slow int }{
		{3, 1, 1, 2, 2}, {5, 2, 2, 3, 3}, {7, 3, 2, 5, 4}, {9, 4, 3, 6, 5},
		{11, 5, 3, 8, 6}, {13, 6, 4, 9, 7},
	} {
		require.Equal(t, c.e, EPaxosDefaultE(c.f), "n=%d", c.n)
		require.Equal(t, c.fast, EPaxosFast(c.n, c.e), "n=%d", c.n)
		require.Equal(t, c.slow, EPaxosSlow(c.n, c.f), "n=%d", c.n)
		require.GreaterOrEqual(t, c.n, max(2*c.e+c.f-1, 2*c.f+1))
	}
}

func TestTrackerCountsDistinctNodes(t *testing.T) {
	tr := NewTracker(2)
	require.True(t, tr.Add(1))
	require.False(t, tr.Add(1), "a duplicate ack must not count")
	require.False(t, tr.Reached())
	require.True(t, tr.Add(protocols.NodeID(3)))
	require.True(t, tr.Reached())
	require.Equal(t, []protocols.NodeID{1, 3}, tr.Nodes())
	require.True(t, tr.Has(3))
	require.False(t, tr.Has(2))
}

// TestTrackerBeyondInlineNodes checks a tracker of more nodes than it holds
// inline: order, duplicates, counts and the threshold.
func TestTrackerBeyondInlineNodes(t *testing.T) {
	const n = 3*smallNodes + 2
	tr := NewTracker(n - 1)
	var want []protocols.NodeID
	for i := range n {
		id := protocols.NodeID(100 - 3*i)
		require.Equal(t, i >= n-1, tr.Reached(), "after %d nodes", i)
		require.False(t, tr.Has(id))
		require.True(t, tr.Add(id))
		want = append(want, id)
		for _, old := range want {
			require.False(t, tr.Add(old), "duplicate %d after %d nodes", old, i+1)
			require.True(t, tr.Has(old))
		}
		require.Equal(t, want, tr.Nodes())
		require.Equal(t, i+1, tr.Count())
		require.Equal(t, i+2 >= n, tr.Reached(), "after %d nodes", i+1)
	}
}

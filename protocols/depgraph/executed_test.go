package depgraph

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestExecutedRestores: what Executed reports, RestoreExecuted gives back to
// a fresh graph, which then neither executes those dots again nor waits for
// them.
func TestExecutedRestores(t *testing.T) {
	r := newRecorder()
	r.commit(dot(1, 1))
	r.commit(dot(1, 2), dot(1, 1))
	r.commit(dot(1, 4)) // 1.3 is not committed: a gap
	r.commit(dot(2, 1), dot(1, 3))
	upto, above := r.g.Executed(1)
	require.Equal(t, uint64(2), upto)
	require.Equal(t, []uint64{4}, above)
	upto2, above2 := r.g.Executed(2)
	require.Zero(t, upto2)
	require.Empty(t, above2)

	s := newRecorder()
	s.g.RestoreExecuted(1, upto, above)
	for _, q := range []uint64{1, 2, 4} {
		require.True(t, s.g.IsExecuted(dot(1, q)))
	}
	require.False(t, s.g.IsExecuted(dot(1, 3)))
	require.Equal(t, uint64(2), s.g.ExecutedPrefix(1))
	s.commit(dot(1, 2)) // already executed: ignored
	s.commit(dot(2, 1), dot(1, 3), dot(1, 4))
	require.Empty(t, s.order, "2.1 waits for 1.3 only")
	require.Equal(t, []Dot{dot(1, 3)}, s.g.Missing())
	s.commit(dot(1, 3), dot(1, 2))
	require.Equal(t, []Dot{dot(1, 3), dot(2, 1)}, s.order)
	require.Equal(t, uint64(4), s.g.ExecutedPrefix(1), "the gap closed: 1.4 joins the prefix")
	upto, above = s.g.Executed(1)
	require.Equal(t, uint64(4), upto)
	require.Empty(t, above)
}

// TestRestoreExecutedNormalizes: entries at or below the prefix vanish and
// entries that extend it join it.
func TestRestoreExecutedNormalizes(t *testing.T) {
	g := New(nil)
	g.RestoreExecuted(3, 5, []uint64{2, 5, 6, 7, 9})
	upto, above := g.Executed(3)
	require.Equal(t, uint64(7), upto)
	require.Equal(t, []uint64{9}, above)
	g.RestoreExecuted(3, 1, nil) // lower: nothing changes
	upto, above = g.Executed(3)
	require.Equal(t, uint64(7), upto)
	require.Equal(t, []uint64{9}, above)
	g.RestoreExecuted(3, 8, nil)
	upto, above = g.Executed(3)
	require.Equal(t, uint64(9), upto)
	require.Empty(t, above)
	g.RestoreExecuted(4, ^uint64(0), []uint64{3})
	upto, above = g.Executed(4)
	require.Equal(t, ^uint64(0), upto)
	require.Empty(t, above)
}

package km_test

import (
	"os"
	"testing"

	"github.com/blossom-dso/blossom/examples/internal/iterml"
	"github.com/blossom-dso/blossom/examples/internal/iterml/itermltest"
	"github.com/blossom-dso/blossom/examples/kmeans/km"
	"github.com/blossom-dso/blossom/executor"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	executor.MaybeServeWorker()
	os.Exit(m.Run())
}

// cost is the sum of squared distances of the points to their nearest
// centroid, computed here without the package's statistics.
func cost(t *testing.T, j iterml.Job, model []float64) float64 {
	s := 0.0
	for p := range j.Parts {
		rows, err := iterml.ReadPartition(j.Dir, p, j.Dim)
		require.NoError(t, err)
		for r := 0; r < len(rows); r += j.Dim + 1 {
			_, d := km.Nearest(model, rows[r:r+j.Dim])
			s += d
		}
	}
	return s
}

// TestKMeans runs the DSO variant and the stateless baseline on every
// back end: the same centroids (up to the order of additions), and a
// clustering far better than the initial one.
func TestKMeans(t *testing.T) {
	j := iterml.Job{Run: "km", Dir: t.TempDir(), Parts: 3, Dim: 3, Iterations: 6, K: 4, Seed: 7}
	_, err := km.Generate(j, 300, 3)
	require.NoError(t, err)
	itermltest.Run(t, km.Funcs, j, func(t *testing.T, model []float64) {
		require.Len(t, model, j.K*j.Dim)
		require.Less(t, cost(t, j, model), cost(t, j, km.Init(j))/4, "k-means improves on its initial centroids")
	})
}

func TestUpdate(t *testing.T) {
	j := iterml.Job{Dim: 2, K: 2}
	// Cluster 0: points (1,2) and (3,4); cluster 1 empty keeps (9,9).
	next := km.Update(j, []float64{0, 0, 9, 9}, []float64{4, 6, 2, 0, 0, 0})
	require.Equal(t, []float64{2, 3, 9, 9}, next)
	st := km.Partial(j, []float64{0, 0, 9, 9}, []float64{1, 2, -1, 3, 4, -1, 8, 8, -1})
	require.Equal(t, []float64{4, 6, 2, 8, 8, 1}, st)
}

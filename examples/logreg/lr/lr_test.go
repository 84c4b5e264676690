package lr_test

import (
	"os"
	"testing"

	"github.com/blossom-dso/blossom/examples/internal/iterml"
	"github.com/blossom-dso/blossom/examples/internal/iterml/itermltest"
	"github.com/blossom-dso/blossom/examples/logreg/lr"
	"github.com/blossom-dso/blossom/executor"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	executor.MaybeServeWorker()
	os.Exit(m.Run())
}

// accuracy is the fraction of rows model labels right.
func accuracy(t *testing.T, j iterml.Job, model []float64) float64 {
	right, n := 0, 0
	for p := range j.Parts {
		rows, err := iterml.ReadPartition(j.Dir, p, j.Dim)
		require.NoError(t, err)
		for r := 0; r < len(rows); r += j.Dim + 1 {
			if (lr.Predict(model, rows[r:r+j.Dim]) > 0.5) == (rows[r+j.Dim] == 1) {
				right++
			}
			n++
		}
	}
	return float64(right) / float64(n)
}

// TestLogReg runs the DSO variant and the stateless baseline on every
// back end: the same weights (up to the order of additions), and a
// classifier that labels the training data well.
func TestLogReg(t *testing.T) {
	j := iterml.Job{Run: "lr", Dir: t.TempDir(), Parts: 3, Dim: 4, Iterations: 20, Rate: 1, Seed: 1}
	_, err := lr.Generate(j, 300, 5)
	require.NoError(t, err)
	itermltest.Run(t, lr.Funcs, j, func(t *testing.T, model []float64) {
		require.Len(t, model, j.Dim+1)
		require.Greater(t, accuracy(t, j, model), 0.9)
	})
}

func TestGradient(t *testing.T) {
	j := iterml.Job{Dim: 1, Rate: 2}
	// At zero weights every prediction is 1/2: gradient (p-y)x summed.
	st := lr.Partial(j, []float64{0, 0}, []float64{2, 1, -4, 0})
	require.InDelta(t, -0.5*2+0.5*-4, st[0], 1e-12)
	require.InDelta(t, 0, st[1], 1e-12)
	require.Equal(t, 2.0, st[3])
	require.Equal(t, []float64{-(-3.0 / 2 * 2), 0}, lr.Update(j, []float64{0, 0}, st))
}

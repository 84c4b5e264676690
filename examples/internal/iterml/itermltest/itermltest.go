// Package itermltest runs an iterml algorithm's two variants on every
// executor back end for the tests of the examples.
package itermltest

import (
	"context"
	"io"
	"testing"

	"github.com/blossom-dso/blossom/examples/internal/iterml"
	"github.com/blossom-dso/blossom/examples/internal/setup"
	"github.com/stretchr/testify/require"
)

// Backends are the back ends every example runs on.
var Backends = []string{"local", "process", "http"}

// Run runs j on a fresh 2-node cluster on each back end with both
// variants (iterml Compare: their models must agree within 1e-9), checks
// that every back end ends with the same model (within 1e-9) and that the
// run leaves no object behind, and calls check on each model. The test
// binary's TestMain must call executor.MaybeServeWorker.
func Run(t *testing.T, f iterml.Funcs, j iterml.Job, check func(t *testing.T, model []float64)) {
	var first []float64
	run := j.Run
	for _, b := range Backends {
		t.Run(b, func(t *testing.T) {
			env, err := setup.Start(context.Background(), setup.Flags{Nodes: 2, Backend: b}, setup.Options{Concurrency: j.Parts, Stderr: io.Discard})
			require.NoError(t, err)
			defer env.Close()
			ctx := env.Context(context.Background())
			j.Run = run + "-" + b
			c, err := f.Compare(ctx, j, 1, 1e-9, io.Discard)
			require.NoError(t, err)
			check(t, c.Model)
			if first == nil {
				first = c.Model
			} else {
				d, err := iterml.MaxDiff(first, c.Model)
				require.NoError(t, err)
				require.Less(t, d, 1e-9, "the same model on every back end")
			}
			objs, err := env.Client.ListAll(ctx, "")
			require.NoError(t, err)
			require.Empty(t, objs, "the run deletes its objects")
		})
	}
}

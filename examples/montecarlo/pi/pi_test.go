package pi_test

import (
	"context"
	"io"
	"math"
	"os"
	"testing"

	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/examples/montecarlo/pi"
	"github.com/blossom-dso/blossom/executor"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	executor.MaybeServeWorker()
	os.Exit(m.Run())
}

func TestPi(t *testing.T) {
	cl, err := dsotest.StartCluster(3, dsotest.Options{})
	require.NoError(t, err)
	defer cl.Close()
	for _, b := range []string{"local", "process"} {
		t.Run(b, func(t *testing.T) {
			e, err := executor.New(executor.Options{Backend: b, DSO: cl.Endpoints, Stderr: io.Discard})
			require.NoError(t, err)
			defer e.Close()
			ctx := executor.WithExecutor(context.Background(), e)
			j := pi.Job{Run: "test-" + b, Workers: 3, Rounds: 2, Calls: 20, Points: 500}
			v, rounds, calls, err := pi.Run(ctx, j)
			require.NoError(t, err)
			require.Len(t, rounds, 2)
			require.Equal(t, int64(3*2*(20+1)), calls)
			require.Less(t, math.Abs(v-math.Pi), 0.1, "π ≈ %v from 60000 points", v)
		})
	}
}

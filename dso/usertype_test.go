package dso_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/stretchr/testify/require"
)

// Centroids are the shared k-means centroids of deliverable Listing 5:
// workers add their local per-cluster sums and sizes, and the last of an
// iteration's updates moves the centroids.
type Centroids struct {
	K, Dim, Workers int
	Cur             []float64 // K×Dim current centroids
	sums            []float64
	counts          []int64
	updates         int
	Iteration       int64
}

// Init takes the constructor arguments: k, dim, workers and the initial
// centroids.
func (c *Centroids) Init(k, dim, workers int, initial []float64) error {
	if k <= 0 || dim <= 0 || workers <= 0 || len(initial) != k*dim {
		return errors.New("bad shape")
	}
	c.K, c.Dim, c.Workers, c.Cur = k, dim, workers, initial
	c.sums, c.counts = make([]float64, k*dim), make([]int64, k)
	return nil
}

// Get returns the current centroids.
func (c *Centroids) Get() ([]float64, error) { return c.Cur, nil }

// Update adds one worker's local sums and sizes; it returns the iteration
// the update belongs to.
func (c *Centroids) Update(sums []float64, counts []int64) (int64, error) {
	if len(sums) != c.K*c.Dim || len(counts) != c.K {
		return 0, errors.New("shape mismatch")
	}
	for i, s := range sums {
		c.sums[i] += s
	}
	for i, n := range counts {
		c.counts[i] += n
	}
	it := c.Iteration
	if c.updates++; c.updates == c.Workers {
		for k := 0; k < c.K; k++ {
			if c.counts[k] > 0 {
				for d := 0; d < c.Dim; d++ {
					c.Cur[k*c.Dim+d] = c.sums[k*c.Dim+d] / float64(c.counts[k])
				}
			}
		}
		clear(c.sums)
		clear(c.counts)
		c.updates = 0
		c.Iteration++
	}
	return it, nil
}

// Delta is the convergence criterion (GlobalDelta of Listing 5).
type Delta struct{ Moved int64 }

// Add records points that changed cluster.
func (d *Delta) Add(n int64) (int64, error) { d.Moved += n; return d.Moved, nil }

// Reset clears the count.
func (d *Delta) Reset() error { d.Moved = 0; return nil }

func registerKMeans(r *dso.Registry) error {
	if err := dso.RegisterType(r, func() *Centroids { return &Centroids{} }); err != nil {
		return err
	}
	return dso.RegisterType(r, func() *Delta { return &Delta{} })
}

func TestUserDefinedKMeansCentroidsConverge(t *testing.T) {
	t.Parallel()
	cl, err := dsotest.StartCluster(3, dsotest.Options{Register: registerKMeans})
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := cl.Dial(ctx)
	require.NoError(t, err)
	defer c.Close()

	const k, dim, workers, perWorker, iters = 3, 2, 6, 200, 8
	centers := []float64{0, 0, 10, 10, -10, 10}
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([][]float64, workers)
	for w := range data {
		for i := 0; i < perWorker; i++ {
			ci := rng.IntN(k)
			data[w] = append(data[w], centers[2*ci]+rng.NormFloat64(), centers[2*ci+1]+rng.NormFloat64())
		}
	}
	initial := []float64{data[0][0], data[0][1], data[1][0], data[1][1], data[2][0], data[2][1]}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cs := dso.NewShared[Centroids](c, "centroids", k, dim, workers, initial)
			delta := dso.NewShared[Delta](c, "delta")
			barrier := dso.NewCyclicBarrier(c, "kmeans", workers)
			pts := data[w]
			assign := make([]int, len(pts)/dim)
			for it := 0; it < iters; it++ {
				cur, err := dso.Call0(ctx, cs, (*Centroids).Get)
				if err != nil {
					t.Error(err)
					return
				}
				sums, counts := make([]float64, k*dim), make([]int64, k)
				moved := int64(0)
				for p := range assign {
					best, bd := 0, math.Inf(1)
					for j := 0; j < k; j++ {
						dx, dy := pts[p*2]-cur[j*2], pts[p*2+1]-cur[j*2+1]
						if d := dx*dx + dy*dy; d < bd {
							best, bd = j, d
						}
					}
					if best != assign[p] {
						moved++
					}
					assign[p] = best
					sums[best*2] += pts[p*2]
					sums[best*2+1] += pts[p*2+1]
					counts[best]++
				}
				if _, err := dso.Call1(ctx, delta, (*Delta).Add, moved); err != nil {
					t.Error(err)
					return
				}
				got, err := dso.Call2(ctx, cs, (*Centroids).Update, sums, counts)
				if err != nil || got != int64(it) {
					t.Errorf("update: iteration %d, want %d, err %v", got, it, err)
					return
				}
				if _, err := barrier.Await(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	cs := dso.NewShared[Centroids](c, "centroids")
	final, err := dso.Call0(ctx, cs, (*Centroids).Get)
	require.NoError(t, err)
	for j := 0; j < k; j++ {
		best := math.Inf(1)
		for i := 0; i < k; i++ {
			dx, dy := final[i*2]-centers[j*2], final[i*2+1]-centers[j*2+1]
			best = min(best, math.Hypot(dx, dy))
		}
		require.True(t, best < 0.5, "center %v not found; centroids %v", j, final)
	}
	// A user type's errors and argument checks reach the client.
	_, err = dso.Call2(ctx, cs, (*Centroids).Update, []float64{1}, []int64{1})
	require.ErrorIs(t, err, dso.ErrFailed)
	_, err = cs.Call(ctx, "Update", "x", int64(1))
	require.ErrorIs(t, err, dso.ErrBadArgs)
	_, err = cs.Call(ctx, "NoSuchMethod")
	require.ErrorIs(t, err, dso.ErrUnknownMethod)
	require.Equal(t, "dso_test.Centroids", dso.TypeNameOf[Centroids]())
}

// Package km is k-means clustering (Lloyd's algorithm) as cloud threads,
// deliverable Listing 5: its functions are registered with the executor
// as kmeans.dso (a cloud thread per partition, the cluster sums in a
// shared Matrix per iteration and a barrier per iteration) and
// kmeans.map and kmeans.reduce (the stateless baseline, exchanging state
// through files); see package iterml for both. The model is K centroids
// of Dim coordinates, row-major; the statistics of a partition are, per
// cluster, the sum of its points and their count.
package km

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/blossom-dso/blossom/examples/internal/iterml"
)

// Funcs are k-means's registered functions.
var Funcs = iterml.Register(iterml.Algo{Name: "kmeans", Init: Init, Partial: Partial, Update: Update})

// Box bounds the generated data and the initial centroids: every
// coordinate of a centre is in [-Box, Box].
const Box = 10.0

// Init returns K centroids drawn uniformly in the box from j.Seed.
func Init(j iterml.Job) []float64 {
	rng := rand.New(rand.NewPCG(j.Seed, 1))
	m := make([]float64, j.K*j.Dim)
	for i := range m {
		m[i] = (2*rng.Float64() - 1) * Box
	}
	return m
}

// Nearest returns the index of the centroid of model nearest to x and the
// squared distance.
func Nearest(model, x []float64) (int, float64) {
	dim := len(x)
	best, bd := 0, math.Inf(1)
	for c := 0; c < len(model)/dim; c++ {
		d := 0.0
		for i, v := range x {
			t := v - model[c*dim+i]
			d += t * t
		}
		if d < bd {
			best, bd = c, d
		}
	}
	return best, bd
}

// Partial returns, for each cluster, the sum of the rows nearest to its
// centroid followed by their count: K×(Dim+1) values.
func Partial(j iterml.Job, model, rows []float64) []float64 {
	st := make([]float64, j.K*(j.Dim+1))
	for r := 0; r+j.Dim < len(rows); r += j.Dim + 1 {
		x := rows[r : r+j.Dim]
		c, _ := Nearest(model, x)
		o := c * (j.Dim + 1)
		for i, v := range x {
			st[o+i] += v
		}
		st[o+j.Dim]++
	}
	return st
}

// Update moves each centroid to the mean of its points; a centroid with
// no points stays.
func Update(j iterml.Job, model, sum []float64) []float64 {
	next := make([]float64, len(model))
	copy(next, model)
	for c := range j.K {
		o := c * (j.Dim + 1)
		if n := sum[o+j.Dim]; n > 0 {
			for i := range j.Dim {
				next[c*j.Dim+i] = sum[o+i] / n
			}
		}
	}
	return next
}

// Generate writes j.Parts partitions of rows points each: Gaussian blobs
// (standard deviation 1) around j.K centres drawn in the box from seed;
// a row's label is its blob. It returns the centres.
func Generate(j iterml.Job, rows int, seed uint64) ([]float64, error) {
	if j.K <= 0 || j.Dim <= 0 || j.Parts <= 0 || rows <= 0 {
		return nil, fmt.Errorf("km: bad data shape: %d clusters, %d dimensions, %d partitions of %d rows", j.K, j.Dim, j.Parts, rows)
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	centres := make([]float64, j.K*j.Dim)
	for i := range centres {
		centres[i] = (2*rng.Float64() - 1) * Box
	}
	for p := range j.Parts {
		prng := rand.New(rand.NewPCG(seed, uint64(100+p)))
		data := make([]float64, 0, rows*(j.Dim+1))
		for range rows {
			c := prng.IntN(j.K)
			for i := range j.Dim {
				data = append(data, centres[c*j.Dim+i]+prng.NormFloat64())
			}
			data = append(data, float64(c))
		}
		if err := iterml.WritePartition(j.Dir, p, data); err != nil {
			return nil, err
		}
	}
	return centres, nil
}

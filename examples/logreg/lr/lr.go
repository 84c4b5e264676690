// Package lr is logistic regression by batch gradient descent as cloud
// threads: its functions are registered with the executor as logreg.dso
// (a cloud thread per partition, the gradient summed in a shared Matrix
// per iteration and a barrier per iteration, every thread then updating
// its copy of the shared weights) and logreg.map and logreg.reduce (the
// stateless baseline, exchanging the weights and gradients through
// files); see package iterml for both. The model is Dim weights and a
// bias; the statistics of a partition are the gradient of the summed log
// loss (Dim+1 values), the summed loss and the number of rows.
package lr

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/blossom-dso/blossom/examples/internal/iterml"
)

// Funcs are logistic regression's registered functions.
var Funcs = iterml.Register(iterml.Algo{Name: "logreg", Init: Init, Partial: Partial, Update: Update})

// Init returns zero weights and bias.
func Init(j iterml.Job) []float64 { return make([]float64, j.Dim+1) }

// Predict returns the probability that x is labelled 1 under model.
func Predict(model, x []float64) float64 {
	z := model[len(x)]
	for i, v := range x {
		z += model[i] * v
	}
	return 1 / (1 + math.Exp(-z))
}

// Partial returns the gradient of the summed log loss over rows (Dim
// weights, then the bias), the summed loss and the number of rows.
func Partial(j iterml.Job, model, rows []float64) []float64 {
	st := make([]float64, j.Dim+3)
	for r := 0; r+j.Dim < len(rows); r += j.Dim + 1 {
		x, y := rows[r:r+j.Dim], rows[r+j.Dim]
		p := Predict(model, x)
		for i, v := range x {
			st[i] += (p - y) * v
		}
		st[j.Dim] += p - y
		p = min(max(p, 1e-12), 1-1e-12)
		st[j.Dim+1] -= y*math.Log(p) + (1-y)*math.Log(1-p)
		st[j.Dim+2]++
	}
	return st
}

// Update takes one gradient step of j.Rate on the mean loss.
func Update(j iterml.Job, model, sum []float64) []float64 {
	next := make([]float64, len(model))
	n := max(sum[j.Dim+2], 1)
	for i := range model {
		next[i] = model[i] - j.Rate*sum[i]/n
	}
	return next
}

// Generate writes j.Parts partitions of rows labelled rows each: features
// standard normal, label 1 when a hidden linear function from seed plus
// noise is positive. It returns the hidden weights and bias.
func Generate(j iterml.Job, rows int, seed uint64) ([]float64, error) {
	if j.Dim <= 0 || j.Parts <= 0 || rows <= 0 {
		return nil, fmt.Errorf("lr: bad data shape: %d dimensions, %d partitions of %d rows", j.Dim, j.Parts, rows)
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	truth := make([]float64, j.Dim+1)
	for i := range truth {
		truth[i] = rng.NormFloat64()
	}
	for p := range j.Parts {
		prng := rand.New(rand.NewPCG(seed, uint64(100+p)))
		data := make([]float64, 0, rows*(j.Dim+1))
		for range rows {
			z := truth[j.Dim] + 0.1*prng.NormFloat64()
			for i := range j.Dim {
				v := prng.NormFloat64()
				z += truth[i] * v
				data = append(data, v)
			}
			y := 0.0
			if z > 0 {
				y = 1
			}
			data = append(data, y)
		}
		if err := iterml.WritePartition(j.Dir, p, data); err != nil {
			return nil, err
		}
	}
	return truth, nil
}

// Package pi is the cloud-thread body of the Monte Carlo estimate of π of
// deliverable Listing 1, registered with the executor as "montecarlo.pi":
// each worker draws random points, adds its hits to one shared AtomicLong
// per call, and crosses a CyclicBarrier after every round, after which
// worker 0 reads the running estimate. Run drives a whole job.
//
// The job adds to a plain AtomicLong and meets at a barrier, so it must
// run with one attempt per worker: a retried worker would add its hits
// again and cross the barrier twice (see the executor's package doc).
package pi

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/executor"
)

// Job describes one Monte Carlo run.
type Job struct {
	// Run names the job's objects: Run+"/hits" and Run+"/round".
	Run string
	// Workers meet at the barrier each round.
	Workers int
	// Rounds are barrier-separated.
	Rounds int
	// Calls is the number of AddAndGet calls of each worker per round.
	Calls int
	// Points is the number of random points per call.
	Points int
}

// Result is what one worker reports.
type Result struct {
	// Calls counts the worker's DSO calls (adds and barrier waits).
	Calls int64
	// Estimates holds π after each round (worker 0 only).
	Estimates []float64
}

// Worker is the registered cloud-thread function; InvokeIterative over
// [0, Workers) with Workers workers gives each one index.
var Worker = executor.Register("montecarlo.pi", work)

func work(ctx context.Context, c executor.Chunk[Job]) (Result, error) {
	j := c.Arg
	cl, err := executor.DSO(ctx)
	if err != nil {
		return Result{}, err
	}
	hits := dso.NewAtomicLong(cl, j.Run+"/hits")
	barrier := dso.NewCyclicBarrier(cl, j.Run+"/round", j.Workers)
	var res Result
	for w := c.From; w < c.To; w++ {
		rng := rand.New(rand.NewPCG(uint64(w), 2024))
		for r := 0; r < j.Rounds; r++ {
			for i := 0; i < j.Calls; i++ {
				in := int64(0)
				for p := 0; p < j.Points; p++ {
					x, y := rng.Float64(), rng.Float64()
					if x*x+y*y <= 1 {
						in++
					}
				}
				if _, err := hits.AddAndGet(ctx, in); err != nil {
					return res, err
				}
				res.Calls++
			}
			// Everyone has added this round's hits when the barrier opens.
			if _, err := barrier.Await(ctx); err != nil {
				return res, err
			}
			res.Calls++
			if w == 0 {
				n, err := hits.Get(ctx)
				if err != nil {
					return res, err
				}
				total := float64(j.Workers) * float64(r+1) * float64(j.Calls) * float64(j.Points)
				res.Estimates = append(res.Estimates, 4*float64(n)/total)
			}
		}
	}
	return res, nil
}

// Run runs the job on the executor of ctx, one invocation per worker, and
// returns the final estimate, the per-round estimates and the DSO calls
// made.
func Run(ctx context.Context, j Job) (pi float64, rounds []float64, calls int64, err error) {
	if j.Workers <= 0 || j.Rounds <= 0 || j.Calls <= 0 || j.Points <= 0 {
		return 0, nil, 0, fmt.Errorf("pi: bad job %+v", j)
	}
	out, err := executor.InvokeIterative(ctx, Worker, 0, j.Workers, j.Workers, j,
		executor.WithRetry(executor.RetryPolicy{Attempts: 1}))
	if err != nil {
		return 0, nil, 0, err
	}
	for _, r := range out {
		calls += r.Calls
	}
	rounds = out[0].Estimates
	return rounds[len(rounds)-1], rounds, calls, nil
}

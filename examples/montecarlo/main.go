// Command montecarlo is the Monte Carlo estimate of π of deliverable
// Listing 1 on a DSO cluster: goroutine workers (standing in for cloud
// threads) draw random points and add their hits to one shared AtomicLong,
// and a CyclicBarrier separates the rounds, after which one worker prints
// the running estimate. It starts its own 3-node cluster in this process
// unless -endpoints names a running one.
//
//	go run ./examples/montecarlo
//	go run ./examples/montecarlo -endpoints localhost:7400 -workers 16
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
)

func main() {
	nodes := flag.Int("nodes", 3, "servers of the in-process cluster")
	endpoints := flag.String("endpoints", "", "use a running cluster instead (host:port,...)")
	workers := flag.Int("workers", 8, "worker goroutines (cloud threads)")
	rounds := flag.Int("rounds", 4, "barrier-separated rounds")
	calls := flag.Int("calls", 2500, "addAndGet calls per worker per round")
	points := flag.Int("points", 200, "random points per call")
	flag.Parse()
	if err := run(*nodes, *endpoints, *workers, *rounds, *calls, *points); err != nil {
		fmt.Fprintln(os.Stderr, "montecarlo:", err)
		os.Exit(1)
	}
}

func run(nodes int, endpoints string, workers, rounds, calls, points int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	eps := strings.Split(endpoints, ",")
	if endpoints == "" {
		cl, err := dsotest.StartCluster(nodes, dsotest.Options{})
		if err != nil {
			return err
		}
		defer cl.Close()
		eps = cl.Endpoints
		fmt.Printf("started a %d-node DSO cluster: %s\n", nodes, strings.Join(eps, " "))
	}
	c, err := client.Dial(ctx, eps...)
	if err != nil {
		return err
	}
	defer c.Close()

	run := fmt.Sprint("pi-", time.Now().UnixNano())
	hits := dso.NewAtomicLong(c, run+"/hits")
	barrier := dso.NewCyclicBarrier(c, run+"/round", workers)
	fmt.Printf("%d workers × %d rounds × %d calls × %d points; hits in AtomicLong %q (on %s)\n",
		workers, rounds, calls, points, hits.Ref().Key, c.Owner(hits.Ref()))

	var ncalls atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 2024))
			for r := 0; r < rounds; r++ {
				for i := 0; i < calls; i++ {
					in := int64(0)
					for p := 0; p < points; p++ {
						x, y := rng.Float64(), rng.Float64()
						if x*x+y*y <= 1 {
							in++
						}
					}
					if _, err := hits.AddAndGet(ctx, in); err != nil {
						errc <- err
						return
					}
					ncalls.Add(1)
				}
				// The barrier-synchronized step: everyone has added this
				// round's hits when the barrier opens.
				if _, err := barrier.Await(ctx); err != nil {
					errc <- err
					return
				}
				ncalls.Add(1)
				if w == 0 {
					n, err := hits.Get(ctx)
					if err != nil {
						errc <- err
						return
					}
					total := float64(workers) * float64(r+1) * float64(calls) * float64(points)
					fmt.Printf("  round %d: π ≈ %.6f\n", r+1, 4*float64(n)/total)
				}
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	n, err := hits.Get(ctx)
	if err != nil {
		return err
	}
	total := float64(workers) * float64(rounds) * float64(calls) * float64(points)
	pi := 4 * float64(n) / total
	fmt.Printf("π ≈ %.6f (error %.2e) from %.0f points\n", pi, math.Abs(pi-math.Pi), total)
	fmt.Printf("%d DSO calls in %v: %.0f calls/s\n", ncalls.Load(), elapsed.Round(time.Millisecond), float64(ncalls.Load())/elapsed.Seconds())
	return c.Clear(ctx)
}

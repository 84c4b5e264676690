// Command montecarlo is the Monte Carlo estimate of π of deliverable
// Listing 1 on a DSO cluster, run as cloud threads: each worker is one
// invocation of the registered function "montecarlo.pi" (package pi) on
// the executor — goroutines (-executor local), worker processes of this
// binary (-executor process), an HTTP endpoint (-executor http) or AWS
// Lambda (-executor lambda: a local Lambda emulator running this binary
// as the handler unless -lambda-function names a deployed function); the
// default is $BLOSSOM_EXECUTOR, else local. Workers draw random points and add their hits to one shared
// AtomicLong, and a CyclicBarrier separates the rounds. It starts its own
// 3-node cluster in this process unless -endpoints names a running one.
//
//	go run ./examples/montecarlo -executor process
//	go run ./examples/montecarlo -endpoints localhost:7400 -workers 16
//	go run ./examples/montecarlo -executor process -scaling 1,2,4,8
//	go run ./examples/montecarlo -executor lambda -scaling 1,2,4,8
//
// With -scaling, it runs one job per worker count with the same total
// work (-calls is then the calls per round of all workers together) and
// prints the time of each (deliverable Figure 4).
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/blossom-dso/blossom/examples/internal/setup"
	"github.com/blossom-dso/blossom/examples/montecarlo/pi"
	"github.com/blossom-dso/blossom/executor"
)

func main() {
	executor.MaybeServeWorker() // a worker process of the process back end
	var f setup.Flags
	f.Register(flag.CommandLine)
	workers := flag.Int("workers", 8, "cloud threads")
	rounds := flag.Int("rounds", 4, "barrier-separated rounds")
	calls := flag.Int("calls", 2500, "addAndGet calls per worker per round")
	points := flag.Int("points", 200, "random points per call")
	scaling := flag.String("scaling", "", "comma-separated worker counts: time the same total work on each")
	flag.Parse()
	if err := run(f, *workers, *rounds, *calls, *points, *scaling); err != nil {
		fmt.Fprintln(os.Stderr, "montecarlo:", err)
		os.Exit(1)
	}
}

func run(f setup.Flags, workers, rounds, calls, points int, scaling string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var counts []int
	if scaling != "" {
		for _, s := range strings.Split(scaling, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				return fmt.Errorf("bad -scaling entry %q", s)
			}
			counts = append(counts, n)
		}
	}
	maxw := workers
	for _, n := range counts {
		maxw = max(maxw, n)
	}
	// The barrier needs every worker running at once: the concurrency
	// limit is the largest worker count.
	env, err := setup.Start(ctx, f, setup.Options{Concurrency: maxw, Log: os.Stdout})
	if err != nil {
		return err
	}
	defer env.Close()
	c, e := env.Client, env.Exec
	ctx = env.Context(ctx)
	run := fmt.Sprint("pi-", time.Now().UnixNano())

	if scaling != "" {
		fmt.Printf("scaling on the %s back end: %d rounds × %d calls × %d points in all, split over the workers\n",
			e.Backend().Name(), rounds, calls, points)
		// Warm the pool so that process start-up is not timed.
		if _, _, _, err := pi.Run(ctx, pi.Job{Run: run + "-warm", Workers: maxw, Rounds: 1, Calls: 1, Points: 1}); err != nil {
			return err
		}
		fmt.Println("workers  time      calls/s   speed-up  π")
		var base time.Duration
		for i, n := range counts {
			// One run key per job: a count listed twice must not add to
			// the first job's hits.
			j := pi.Job{Run: fmt.Sprint(run, "-", i, "-", n), Workers: n, Rounds: rounds, Calls: max(1, calls/n), Points: points}
			start := time.Now()
			v, _, ncalls, err := pi.Run(ctx, j)
			if err != nil {
				return err
			}
			el := time.Since(start)
			if base == 0 {
				base = el
			}
			fmt.Printf("%7d  %-8v  %7.0f   %8.2f  %.5f\n", n, el.Round(time.Millisecond), float64(ncalls)/el.Seconds(), float64(base)/float64(el), v)
		}
		return c.Clear(ctx)
	}

	j := pi.Job{Run: run, Workers: workers, Rounds: rounds, Calls: calls, Points: points}
	fmt.Printf("%d cloud threads on the %s back end × %d rounds × %d calls × %d points; hits in AtomicLong %q\n",
		workers, e.Backend().Name(), rounds, calls, points, run+"/hits")
	start := time.Now()
	v, est, ncalls, err := pi.Run(ctx, j)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	for r, x := range est {
		fmt.Printf("  round %d: π ≈ %.6f\n", r+1, x)
	}
	total := float64(workers) * float64(rounds) * float64(calls) * float64(points)
	fmt.Printf("π ≈ %.6f (error %.2e) from %.0f points\n", v, math.Abs(v-math.Pi), total)
	fmt.Printf("%d DSO calls in %v: %.0f calls/s\n", ncalls, elapsed.Round(time.Millisecond), float64(ncalls)/elapsed.Seconds())
	return c.Clear(ctx)
}

// Command mandelbrot draws the Mandelbrot set with cloud threads: the rows
// of the picture are split into bands, one invocation of the registered
// function "mandelbrot.rows" (package mandel) per band, on the executor
// back end of -executor (local goroutines, worker processes of this
// binary, or an HTTP endpoint), and the bands are written as a PNG.
//
//	go run ./examples/mandelbrot -executor process -workers 8 -o mandelbrot.png
//	go run ./examples/mandelbrot -executor process -scaling 1,2,4,8
//
// With -scaling it times the same picture on each worker count
// (deliverable Figure 4). The functions need no DSO; the cluster is
// started only to pass its endpoints on, like every example.
package main

import (
	"context"
	"flag"
	"fmt"
	"image/png"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/blossom-dso/blossom/examples/internal/setup"
	"github.com/blossom-dso/blossom/examples/mandelbrot/mandel"
	"github.com/blossom-dso/blossom/executor"
)

func main() {
	executor.MaybeServeWorker() // a worker process of the process back end
	var f setup.Flags
	f.Register(flag.CommandLine)
	width := flag.Int("width", 1200, "picture width")
	height := flag.Int("height", 800, "picture height")
	maxIter := flag.Int("iter", 1000, "iterations before a point counts as inside")
	workers := flag.Int("workers", 8, "cloud threads (row bands)")
	out := flag.String("o", "mandelbrot.png", "PNG file to write")
	scaling := flag.String("scaling", "", "comma-separated worker counts: time the same picture on each")
	flag.Parse()
	if err := run(f, mandel.Default(*width, *height, *maxIter), *workers, *out, *scaling); err != nil {
		fmt.Fprintln(os.Stderr, "mandelbrot:", err)
		os.Exit(1)
	}
}

func run(f setup.Flags, j mandel.Job, workers int, out, scaling string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	counts := []int{workers}
	if scaling != "" {
		counts = nil
		for _, s := range strings.Split(scaling, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				return fmt.Errorf("bad -scaling entry %q", s)
			}
			counts = append(counts, n)
		}
	}
	f.Nodes = 1 // the bands need no DSO: one node is enough
	env, err := setup.Start(ctx, f, setup.Options{Concurrency: max(workers, slicesMax(counts))})
	if err != nil {
		return err
	}
	defer env.Close()
	ctx = env.Context(ctx)
	// Warm the pool so that process start-up is not timed.
	if _, err := mandel.Compute(ctx, mandel.Default(8, slicesMax(counts), 1), slicesMax(counts)); err != nil {
		return err
	}
	fmt.Printf("%d×%d pixels, %d iterations, on the %s back end\n", j.Width, j.Height, j.MaxIter, env.Exec.Backend().Name())
	fmt.Println("workers  time      speed-up")
	var iters []int
	var base time.Duration
	for _, n := range counts {
		start := time.Now()
		iters, err = mandel.Compute(ctx, j, n)
		if err != nil {
			return err
		}
		el := time.Since(start)
		if base == 0 {
			base = el
		}
		fmt.Printf("%7d  %-8v  %8.2f\n", n, el.Round(time.Millisecond), float64(base)/float64(el))
	}
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := png.Encode(w, mandel.Image(j, iters)); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Println("wrote", out)
	return nil
}

func slicesMax(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

package iterml

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/blossom-dso/blossom/examples/internal/setup"
)

// CLI is the command line shared by the k-means and logistic regression
// examples.
type CLI struct {
	setup.Flags
	// Job is filled from the flags (Dir, Parts, Dim, Iterations, K, Rate).
	Job Job
	// Rows is the number of rows per partition.
	Rows int
	// Repeats is the number of runs of each variant.
	Repeats int
	// Seed generates the data.
	Seed uint64
}

// Register defines the flags on fs; k and rate are the defaults of -k and
// -rate.
func (c *CLI) Register(fs *flag.FlagSet, k int, rate float64) {
	c.Flags.Register(fs)
	fs.StringVar(&c.Job.Dir, "data", "", "directory of the partitions and the baseline's files (default a temporary one)")
	fs.IntVar(&c.Job.Parts, "workers", 4, "cloud threads, one partition each")
	fs.IntVar(&c.Rows, "rows", 20000, "rows per partition")
	fs.IntVar(&c.Job.Dim, "dim", 20, "features per row")
	fs.IntVar(&c.Job.Iterations, "iter", 10, "iterations")
	fs.IntVar(&c.Job.K, "k", k, "clusters (k-means)")
	fs.Float64Var(&c.Job.Rate, "rate", rate, "learning rate (logistic regression)")
	fs.IntVar(&c.Repeats, "repeats", 3, "runs of each variant, alternating")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed of the data and the initial model")
}

// Main generates the data with gen, runs f's two variants with c, prints
// the per-iteration times and their ratio, and exits on error.
func (f Funcs) Main(name string, c CLI, gen func(j Job, rows int, seed uint64) ([]float64, error), show func(model []float64)) {
	if err := f.main(name, c, gen, show); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

func (f Funcs) main(name string, c CLI, gen func(j Job, rows int, seed uint64) ([]float64, error), show func(model []float64)) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	j := c.Job
	j.Seed = c.Seed
	j.Run = fmt.Sprint(name, "-", time.Now().UnixNano())
	if j.Dir == "" {
		d, err := os.MkdirTemp("", name+"-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		j.Dir = d
	}
	if _, err := gen(j, c.Rows, c.Seed); err != nil {
		return err
	}
	env, err := setup.Start(ctx, c.Flags, setup.Options{Concurrency: j.Parts})
	if err != nil {
		return err
	}
	defer env.Close()
	ctx = env.Context(ctx)
	// Warm the back end so that worker start-up is not timed.
	w := j
	w.Run, w.Iterations = j.Run+"-warm", 1
	if _, err := f.RunDSO(ctx, w); err != nil {
		return err
	}
	fmt.Printf("%s: %d cloud threads on the %s back end, %d rows × %d features each, %d iterations\n",
		name, j.Parts, env.Exec.Backend().Name(), c.Rows, j.Dim, j.Iterations)
	cmp, err := f.Compare(ctx, j, max(c.Repeats, 1), 1e-6, os.Stdout)
	if err != nil {
		return err
	}
	d, b := Median(cmp.DSO), Median(cmp.Files)
	fmt.Printf("median per iteration: dso %v, stateless baseline %v: dso/baseline %.2f (%.0f%% faster)\n",
		d.Round(time.Microsecond), b.Round(time.Microsecond), float64(d)/float64(b), 100*(1-float64(d)/float64(b)))
	if show != nil {
		show(cmp.Model)
	}
	return nil
}

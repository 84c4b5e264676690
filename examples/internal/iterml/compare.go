package iterml

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// Comparison is the outcome of Compare.
type Comparison struct {
	// DSO and Files hold the mean iteration time of each repeat.
	DSO, Files []time.Duration
	// MaxDiff is the largest difference between the final models of the
	// two variants over the repeats.
	MaxDiff float64
	// Model is the final model of the last DSO run.
	Model []float64
}

// Median returns the median of ds.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// Compare runs j repeats times with each variant, alternating (files,
// then DSO) so that both see the same load, and checks that their models
// agree within tol; it prints a line per run to w.
func (f Funcs) Compare(ctx context.Context, j Job, repeats int, tol float64, w io.Writer) (Comparison, error) {
	var c Comparison
	run := j.Run
	for r := range repeats {
		j.Run = fmt.Sprintf("%s-files-%d", run, r)
		fr, err := f.RunFiles(ctx, j)
		if err != nil {
			return c, fmt.Errorf("baseline: %w", err)
		}
		j.Run = fmt.Sprintf("%s-dso-%d", run, r)
		dr, err := f.RunDSO(ctx, j)
		if err != nil {
			return c, fmt.Errorf("dso: %w", err)
		}
		d, err := MaxDiff(dr.Model, fr.Model)
		if err != nil {
			return c, err
		}
		if d > tol {
			return c, fmt.Errorf("the DSO and baseline models differ by %g (> %g)", d, tol)
		}
		c.MaxDiff = max(c.MaxDiff, d)
		c.DSO = append(c.DSO, dr.PerIteration())
		c.Files = append(c.Files, fr.PerIteration())
		c.Model = dr.Model
		fmt.Fprintf(w, "repeat %d: per iteration: dso %v, files %v (models differ by %.2g)\n",
			r+1, dr.PerIteration().Round(time.Microsecond), fr.PerIteration().Round(time.Microsecond), d)
	}
	return c, nil
}

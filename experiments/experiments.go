// Package experiments is Blossom's experiments harness: a registry of
// experiments, one per figure or table of the papers Blossom reproduces.
// Each experiment is a Go function measuring one point of a parameter grid,
// with a quick and a full grid. Run writes the measurements as tidy CSV
// (one row per measurement: the point's parameters, the repetition, the
// metric's name and its value) to results/NAME/data.csv and the
// environment (commit, Go version, CPU, date, flags) to
// results/NAME/env.json. A run is resumable: a (point, repetition) already
// in the CSV is not measured again.
//
// Package plots renders the CSV of an experiment as the figure its Figure
// field describes.
package experiments

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Size selects an experiment's grid: Quick for make figures and smoke runs,
// Full for the numbers quoted in docs/EXPERIMENTS.md at full scale.
type Size int

// The sizes.
const (
	// Quick is a small grid and few repetitions: every experiment together
	// runs within minutes on two cores.
	Quick Size = iota
	// Full is the grid and repetitions of the paper's figure.
	Full
)

// String returns "quick" or "full".
func (s Size) String() string {
	if s == Full {
		return "full"
	}
	return "quick"
}

// Param is one named parameter of a point, as it appears in its CSV column.
type Param struct {
	Name, Value string
}

// Point is the parameters of one measurement, in the experiment's column
// order (Experiment.Params).
type Point []Param

// Get returns the value of the parameter name, "" if the point has none.
func (p Point) Get(name string) string {
	for _, q := range p {
		if q.Name == name {
			return q.Value
		}
	}
	return ""
}

// Key identifies the point and repetition rep in the CSV: the resume key.
func (p Point) Key(rep int) string {
	var b strings.Builder
	for _, q := range p {
		b.WriteString(q.Name)
		b.WriteByte('=')
		b.WriteString(q.Value)
		b.WriteByte(';')
	}
	fmt.Fprintf(&b, "rep=%d", rep)
	return b.String()
}

// String returns the point as name=value pairs, for progress lines.
func (p Point) String() string {
	parts := make([]string, len(p))
	for i, q := range p {
		parts[i] = q.Name + "=" + q.Value
	}
	return strings.Join(parts, " ")
}

// Metric is one measured value of a point.
type Metric struct {
	// Name is the metric's column value, e.g. "mean_ms" or, for a metric
	// per site, "site_mean_ms@europe-west4".
	Name  string
	Value float64
}

// Figure says how package plots draws an experiment: Y against X, one
// series per distinct value of the Series parameters, averaged over the
// repetitions with error bars (one standard deviation) where there are
// several.
type Figure struct {
	// Title is the figure's title.
	Title string
	// X is the parameter on the x axis (numeric); XLabel its label.
	X, XLabel string
	// Y is the metric on the y axis; YLabel its label.
	Y, YLabel string
	// Series are the parameters whose values name a series ("protocol").
	Series []string
	// Bars draws a bar chart over the X values (which may then be names)
	// instead of lines.
	Bars bool
	// Paper are the paper's values, drawn beside ours as hollow markers.
	Paper []PaperValue
	// PaperOutside draws (and tabulates) the paper's values also at x
	// values we did not measure, such as a scale beyond the grid; without
	// it a paper value appears only beside a point of ours.
	PaperOutside bool
	// LogY draws the y axis on a log scale (line figures; every value
	// must be positive, and an error bar stops at a tenth of its mean).
	LogY bool
	// Breakdown, if set, adds a second figure of the metrics named
	// Breakdown.Prefix+NAME (one x category per NAME, e.g. per site), at
	// one X value.
	Breakdown *Breakdown
}

// Breakdown is a figure of one metric broken down by a name inside the
// metric column (Metric.Name = Prefix + name), drawn at one value of the
// main figure's X, one series per Series as in the main figure.
type Breakdown struct {
	// Prefix selects the metrics ("site_mean_ms@").
	Prefix string
	// At is the X value drawn; "" means the greatest one with such rows.
	At string
	// Title, XLabel and YLabel label the figure.
	Title, XLabel, YLabel string
}

// PaperValue is one value the paper gives for a figure's point.
type PaperValue struct {
	// Series is the series it belongs to, as package plots names it (the
	// Series parameters' values joined by a space).
	Series string
	// X is the x value (for bar charts, the X parameter's value as text in
	// XName).
	X     float64
	XName string
	// Y is the paper's value, in the figure's unit.
	Y float64
}

// Experiment is one registered experiment.
type Experiment struct {
	// Name is the registry name and the folder under results/.
	Name string
	// Title is a one-line description; Paper the publication reproduced.
	Title, Paper string
	// Params are the parameter columns of the CSV, in order.
	Params []string
	// Points returns the grid of a size; every point has Params in order.
	Points func(Size) []Point
	// Reps is the number of repetitions of each point at a size.
	Reps func(Size) int
	// Measure measures one point once at a size (which may scale the
	// point's workload); rep (0-based) seeds the repetition.
	Measure func(p Point, rep int, size Size) ([]Metric, error)
	// Figure is how package plots draws it.
	Figure Figure
}

var registry = map[string]*Experiment{}

// Register adds e to the registry. It panics on a duplicate or incomplete
// experiment: registration happens in init functions.
func Register(e *Experiment) {
	switch {
	case e.Name == "" || e.Points == nil || e.Measure == nil || e.Reps == nil:
		panic("experiments: Register: incomplete experiment " + e.Name)
	case registry[e.Name] != nil:
		panic("experiments: Register: duplicate experiment " + e.Name)
	}
	registry[e.Name] = e
}

// Lookup returns the experiment registered as name.
func Lookup(name string) (*Experiment, error) {
	e := registry[name]
	if e == nil {
		return nil, fmt.Errorf("experiments: unknown experiment %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return e, nil
}

// Names returns the registered names, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// All returns the registered experiments sorted by name.
func All() []*Experiment {
	var out []*Experiment
	for _, n := range Names() {
		out = append(out, registry[n])
	}
	return out
}

// unregister removes name from the registry (tests only).
func unregister(name string) { delete(registry, name) }

// grid returns the cartesian product of the parameter values, the first
// parameter varying slowest.
func grid(names []string, values ...[]string) []Point {
	pts := []Point{{}}
	for i, vs := range values {
		var next []Point
		for _, p := range pts {
			for _, v := range vs {
				next = append(next, append(slices.Clone(p), Param{names[i], v}))
			}
		}
		pts = next
	}
	return pts
}

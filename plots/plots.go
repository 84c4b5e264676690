// Package plots renders the CSV of an experiment (package experiments) as
// its figure, in PNG and SVG, with gonum/plot: the figure's axes and
// series, the mean over repetitions with error bars of one standard
// deviation where a point was repeated, and the paper's values as hollow
// markers beside ours. Index writes results/index.html, showing every
// figure with its table.
package plots

import (
	"cmp"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/blossom-dso/blossom/experiments"
)

// Stat is the aggregate of one figure point over its repetitions.
type Stat struct {
	Series string
	// X is the x value; XName its text (the category of a bar chart).
	X     float64
	XName string
	Mean  float64
	// SD is the sample standard deviation (0 for one repetition).
	SD float64
	N  int
}

// Aggregate reads dir/NAME/data.csv and returns the figure's points: the
// metric fig.Y per series and x, averaged over the repetitions, sorted by
// series then x (bar charts keep the CSV's order of categories).
func Aggregate(e *experiments.Experiment, dir string) ([]Stat, error) {
	header, rows, err := experiments.ReadRows(filepath.Join(dir, e.Name, experiments.DataFile))
	if err != nil {
		return nil, err
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	fig := e.Figure
	for _, need := range append([]string{fig.X, "metric", "value"}, fig.Series...) {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("plots: %s: no column %q", e.Name, need)
		}
	}
	type key struct{ series, x string }
	vals := map[key][]float64{}
	var order []key
	for _, r := range rows {
		if r[col["metric"]] != fig.Y {
			continue
		}
		v, err := strconv.ParseFloat(r[col["value"]], 64)
		if err != nil || math.IsNaN(v) {
			continue
		}
		k := key{SeriesName(fig.Series, func(n string) string { return r[col[n]] }), r[col[fig.X]]}
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = append(vals[k], v)
	}
	var out []Stat
	for i, k := range order {
		vs := vals[k]
		s := Stat{Series: k.series, XName: k.x, N: len(vs), X: float64(i)}
		if !fig.Bars {
			if s.X, err = strconv.ParseFloat(k.x, 64); err != nil {
				return nil, fmt.Errorf("plots: %s: x %q is not a number", e.Name, k.x)
			}
		}
		s.Mean, s.SD = meanSD(vs)
		out = append(out, s)
	}
	if !fig.Bars {
		sort.SliceStable(out, func(i, j int) bool {
			if out[i].Series != out[j].Series {
				return out[i].Series < out[j].Series
			}
			return out[i].X < out[j].X
		})
	}
	return out, nil
}

// SeriesName names a series from the values of its parameters: the first
// value as it is, each other non-empty one as name=value ("atlas f=1").
func SeriesName(params []string, value func(string) string) string {
	var parts []string
	for i, p := range params {
		v := value(p)
		switch {
		case v == "":
		case i == 0:
			parts = append(parts, v)
		default:
			parts = append(parts, p+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

// seriesOrder returns the series names in first-seen order.
func seriesOrder(stats []experiments.PaperValue, ours []Stat) []string {
	var names []string
	for _, s := range ours {
		if !slices.Contains(names, s.Series) {
			names = append(names, s.Series)
		}
	}
	for _, p := range stats {
		if !slices.Contains(names, p.Series) {
			names = append(names, p.Series)
		}
	}
	return names
}

// errPoints are plotted points with y errors.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}

// Render draws e's figure from dir/NAME/data.csv into dir/NAME/NAME.png and
// .svg and returns the PNG's path.
func Render(e *experiments.Experiment, dir string) (string, error) {
	stats, err := Aggregate(e, dir)
	if err != nil {
		return "", err
	}
	if len(stats) == 0 {
		return "", fmt.Errorf("plots: %s: no rows of metric %q", e.Name, e.Figure.Y)
	}
	fig := e.Figure
	p := plot.New()
	p.Title.Text = fig.Title
	p.X.Label.Text = fig.XLabel
	p.Y.Label.Text = fig.YLabel
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	if fig.Bars {
		if err := bars(p, fig, stats); err != nil {
			return "", err
		}
	} else {
		if err := lines(p, fig, stats); err != nil {
			return "", err
		}
		var ticks []plot.Tick
		for _, s := range stats {
			if !slices.ContainsFunc(ticks, func(t plot.Tick) bool { return t.Value == s.X }) {
				ticks = append(ticks, plot.Tick{Value: s.X, Label: s.XName})
			}
		}
		for _, v := range fig.Paper {
			if fig.PaperOutside && !slices.ContainsFunc(ticks, func(t plot.Tick) bool { return t.Value == v.X }) {
				ticks = append(ticks, plot.Tick{Value: v.X, Label: strconv.FormatFloat(v.X, 'g', -1, 64)})
			}
		}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		p.X.Min, p.X.Max = p.X.Min-0.3, p.X.Max+0.3
	}
	if fig.LogY && !fig.Bars {
		for _, s := range stats {
			if s.Mean <= 0 {
				return "", fmt.Errorf("plots: %s: %s=%s of %s is %g: a log y axis needs positive values", e.Name, fig.X, s.XName, s.Series, s.Mean)
			}
		}
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
		p.Y.Min /= 2
		p.Y.Max *= 10 // room for the legend above the data
	} else {
		p.Y.Min = 0
		p.Y.Max *= 1.4 // room for the legend above the data
	}
	base := filepath.Join(dir, e.Name, e.Name)
	for _, ext := range []string{".png", ".svg"} {
		if err := p.Save(8*vg.Inch, 5*vg.Inch, base+ext); err != nil {
			return "", fmt.Errorf("plots: %s: %w", e.Name, err)
		}
	}
	return base + ".png", nil
}

// BreakdownFile is the base name of an experiment's breakdown figure in
// its folder (NAME-breakdown.png, .svg).
func BreakdownFile(e *experiments.Experiment) string { return e.Name + "-breakdown" }

// RenderBreakdown draws e's Figure.Breakdown into dir/NAME/NAME-breakdown.png
// and .svg: at the X value Breakdown.At (default: the greatest with such
// rows), one category per name after Breakdown.Prefix (sorted), one series
// per Series value, the mean over repetitions with error bars. It returns
// "" and no error if e has no Breakdown.
func RenderBreakdown(e *experiments.Experiment, dir string) (string, error) {
	bd := e.Figure.Breakdown
	if bd == nil {
		return "", nil
	}
	header, rows, err := experiments.ReadRows(filepath.Join(dir, e.Name, experiments.DataFile))
	if err != nil {
		return "", err
	}
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	fig := e.Figure
	for _, need := range append([]string{fig.X, "metric", "value"}, fig.Series...) {
		if _, ok := col[need]; !ok {
			return "", fmt.Errorf("plots: %s: no column %q", e.Name, need)
		}
	}
	at := bd.At
	if at == "" {
		best := math.Inf(-1)
		for _, r := range rows {
			if x, err := strconv.ParseFloat(r[col[fig.X]], 64); err == nil && strings.HasPrefix(r[col["metric"]], bd.Prefix) && x > best {
				best, at = x, r[col[fig.X]]
			}
		}
	}
	type key struct{ series, name string }
	vals := map[key][]float64{}
	var names []string
	for _, r := range rows {
		name, ok := strings.CutPrefix(r[col["metric"]], bd.Prefix)
		if !ok || r[col[fig.X]] != at {
			continue
		}
		v, err := strconv.ParseFloat(r[col["value"]], 64)
		if err != nil || math.IsNaN(v) {
			continue
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
		k := key{SeriesName(fig.Series, func(n string) string { return r[col[n]] }), name}
		vals[k] = append(vals[k], v)
	}
	if len(names) == 0 {
		return "", fmt.Errorf("plots: %s: no rows of metrics %s* at %s=%s", e.Name, bd.Prefix, fig.X, at)
	}
	sort.Strings(names)
	var stats []Stat
	for k, vs := range vals {
		s := Stat{Series: k.series, XName: k.name, X: float64(slices.Index(names, k.name)), N: len(vs)}
		s.Mean, s.SD = meanSD(vs)
		stats = append(stats, s)
	}
	sort.Slice(stats, func(i, j int) bool {
		if stats[i].Series != stats[j].Series {
			return stats[i].Series < stats[j].Series
		}
		return stats[i].X < stats[j].X
	})
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s (%s = %s)", bd.Title, fig.XLabel, at)
	p.X.Label.Text = bd.XLabel
	p.Y.Label.Text = bd.YLabel
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	if err := lines(p, experiments.Figure{}, stats); err != nil {
		return "", err
	}
	ticks := make([]plot.Tick, len(names))
	for i, n := range names {
		ticks[i] = plot.Tick{Value: float64(i), Label: n}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YCenter
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	p.Y.Min = 0
	p.Y.Max *= 1.4
	base := filepath.Join(dir, e.Name, BreakdownFile(e))
	for _, ext := range []string{".png", ".svg"} {
		if err := p.Save(9*vg.Inch, 5*vg.Inch, base+ext); err != nil {
			return "", fmt.Errorf("plots: %s: %w", e.Name, err)
		}
	}
	return base + ".png", nil
}

// meanSD returns the mean and the sample standard deviation (0 for one
// value) of vs, which is not empty.
func meanSD(vs []float64) (mean, sd float64) {
	for _, v := range vs {
		mean += v
	}
	mean /= float64(len(vs))
	if len(vs) > 1 {
		ss := 0.0
		for _, v := range vs {
			ss += (v - mean) * (v - mean)
		}
		sd = math.Sqrt(ss / float64(len(vs)-1))
	}
	return mean, sd
}

func lines(p *plot.Plot, fig experiments.Figure, stats []Stat) error {
	for i, name := range seriesOrder(fig.Paper, stats) {
		var pts errPoints
		for _, s := range stats {
			if s.Series == name {
				pts.XYs = append(pts.XYs, plotter.XY{X: s.X, Y: s.Mean})
				low := s.SD
				if fig.LogY {
					low = min(low, 0.9*s.Mean)
				}
				pts.YErrors = append(pts.YErrors, struct{ Low, High float64 }{low, s.SD})
			}
		}
		c := plotutil.Color(i)
		if len(pts.XYs) > 0 {
			l, sc, err := plotter.NewLinePoints(pts.XYs)
			if err != nil {
				return err
			}
			l.Color, sc.Color, sc.Shape = c, c, plotutil.Shape(i)
			eb, err := plotter.NewYErrorBars(pts)
			if err != nil {
				return err
			}
			eb.Color = c
			p.Add(l, sc, eb)
			p.Legend.Add(name, l, sc)
		}
		var paper plotter.XYs
		for _, v := range fig.Paper {
			if v.Series == name && (fig.PaperOutside || hasX(stats, v.X)) {
				paper = append(paper, plotter.XY{X: v.X, Y: v.Y})
			}
		}
		if len(paper) > 0 {
			sc, err := plotter.NewScatter(paper)
			if err != nil {
				return err
			}
			sc.Color, sc.Shape, sc.Radius = c, draw.RingGlyph{}, vg.Points(5)
			p.Add(sc)
			p.Legend.Add("paper: "+name, sc)
		}
	}
	return nil
}

// hasX reports whether some point of stats has x value x.
func hasX(stats []Stat, x float64) bool {
	return slices.ContainsFunc(stats, func(s Stat) bool { return s.X == x })
}

// bars draws stats as a bar chart, one category per x name (in first-seen
// order), one bar per series within it (side by side, with a legend when
// there are several series), error bars of one standard deviation, and the
// paper's values of fig as hollow markers on the bars of their series and
// category.
func bars(p *plot.Plot, fig experiments.Figure, stats []Stat) error {
	var cats []string
	for _, s := range stats {
		if !slices.Contains(cats, s.XName) {
			cats = append(cats, s.XName)
		}
	}
	series := seriesOrder(nil, stats)
	// A category gets about 480 points of the x axis (-0.5 to n-0.5); its
	// bars, at most 30 points wide, sit side by side around its centre.
	perCat := 480 / float64(len(cats))
	width := min(30, 0.7*perCat/float64(len(series)))
	for i, name := range series {
		offset := (float64(i) - float64(len(series)-1)/2) * width / perCat
		vals := make(plotter.Values, len(cats))
		var pts errPoints
		for _, s := range stats {
			if s.Series != name {
				continue
			}
			c := slices.Index(cats, s.XName)
			vals[c] = s.Mean
			pts.XYs = append(pts.XYs, plotter.XY{X: float64(c) + offset, Y: s.Mean})
			pts.YErrors = append(pts.YErrors, struct{ Low, High float64 }{s.SD, s.SD})
		}
		b, err := plotter.NewBarChart(vals, vg.Points(width))
		if err != nil {
			return err
		}
		b.XMin = offset
		b.Color = plotutil.Color(i)
		b.LineStyle.Width = 0
		eb, err := plotter.NewYErrorBars(pts)
		if err != nil {
			return err
		}
		eb.Color = color.Black
		p.Add(b, eb)
		if name != "" {
			p.Legend.Add(name, b)
		}
		var paper plotter.XYs
		for _, v := range fig.Paper {
			if c := slices.Index(cats, v.XName); v.Series == name && c >= 0 {
				paper = append(paper, plotter.XY{X: float64(c) + offset, Y: v.Y})
			}
		}
		if len(paper) > 0 {
			sc, err := plotter.NewScatter(paper)
			if err != nil {
				return err
			}
			sc.Color, sc.Shape, sc.Radius = plotutil.Color(i), draw.RingGlyph{}, vg.Points(5)
			p.Add(sc)
			p.Legend.Add("paper: "+name, sc)
		}
	}
	p.NominalX(cats...)
	p.X.Min, p.X.Max = -0.5, float64(len(cats))-0.5
	return nil
}

// Table is an experiment's figure as a table: one row per x value, one
// column per series ("mean ± sd (n)"), and the paper's value where it
// gives one.
type Table struct {
	Columns []string
	Rows    [][]string
}

// MakeTable builds e's table from its aggregated points.
func MakeTable(e *experiments.Experiment, stats []Stat) Table {
	fig := e.Figure
	series := seriesOrder(nil, stats)
	var xs []string
	cell := map[[2]string]string{}
	for _, s := range stats {
		if !slices.Contains(xs, s.XName) {
			xs = append(xs, s.XName)
		}
		v := fmt.Sprintf("%.4g", s.Mean)
		if s.N > 1 {
			v = fmt.Sprintf("%.4g ± %.2g (n=%d)", s.Mean, s.SD, s.N)
		}
		cell[[2]string{s.XName, s.Series}] = v
	}
	for _, pv := range fig.Paper {
		x := pv.XName
		if x == "" {
			x = strconv.FormatFloat(pv.X, 'g', -1, 64)
		}
		if fig.PaperOutside && !slices.Contains(xs, x) {
			xs = append(xs, x)
		}
		if slices.Contains(xs, x) {
			cell[[2]string{x, "paper: " + pv.Series}] = strconv.FormatFloat(pv.Y, 'g', 4, 64)
		}
	}
	if fig.PaperOutside && !fig.Bars {
		slices.SortStableFunc(xs, func(a, b string) int {
			fa, _ := strconv.ParseFloat(a, 64)
			fb, _ := strconv.ParseFloat(b, 64)
			return cmp.Compare(fa, fb)
		})
	}
	t := Table{Columns: []string{fig.XLabel}}
	var cols []string
	for _, s := range series {
		if s == "" {
			s = fig.Y
		}
		cols = append(cols, s)
		for _, pv := range fig.Paper {
			if pv.Series == s {
				cols = append(cols, "paper: "+s)
				break
			}
		}
	}
	t.Columns = append(t.Columns, cols...)
	for _, x := range xs {
		row := []string{x}
		for _, c := range cols {
			key := c
			if c == fig.Y && slices.Contains(series, "") {
				key = ""
			}
			v := cell[[2]string{x, key}]
			if v == "" {
				v = "–"
			}
			row = append(row, v)
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// Markdown renders t as a Markdown table.
func (t Table) Markdown() string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(t.Columns, " | ") + " |\n|")
	for range t.Columns {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
	for _, r := range t.Rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

// Plot renders e's figure and writes its table as dir/NAME/table.md; it
// returns the PNG's path and the table.
func Plot(e *experiments.Experiment, dir string) (string, Table, error) {
	png, err := Render(e, dir)
	if err != nil {
		return "", Table{}, err
	}
	if _, err := RenderBreakdown(e, dir); err != nil {
		return "", Table{}, err
	}
	stats, err := Aggregate(e, dir)
	if err != nil {
		return "", Table{}, err
	}
	t := MakeTable(e, stats)
	md := fmt.Sprintf("# %s\n\n%s\n\nPaper: %s\n\n%s: %s\n\n%s", e.Name, e.Title, e.Paper, e.Figure.YLabel, e.Figure.Y, t.Markdown())
	return png, t, os.WriteFile(filepath.Join(dir, e.Name, "table.md"), []byte(md), 0o644)
}

var indexTmpl = template.Must(template.New("index").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Blossom experiments</title>
<style>body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}img{max-width:100%}</style>
</head><body><h1>Blossom experiments</h1>
{{range .}}<h2 id="{{.Name}}">{{.Name}}: {{.Title}}</h2>
<p>Paper: {{.Paper}}. Data: <a href="{{.Name}}/data.csv">data.csv</a>, environment: <a href="{{.Name}}/env.json">env.json</a>, <a href="{{.Name}}/{{.Name}}.svg">SVG</a>.</p>
{{if .Err}}<p><b>not plotted:</b> {{.Err}}</p>{{else}}<img src="{{.Name}}/{{.Name}}.png" alt="{{.Name}}">
{{if .Breakdown}}<img src="{{.Name}}/{{.Breakdown}}.png" alt="{{.Name}} breakdown">{{end}}
<p>{{.YLabel}}; mean ± one standard deviation over n repetitions.</p>
<table><tr>{{range .Table.Columns}}<th>{{.}}</th>{{end}}</tr>
{{range .Table.Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>{{end}}
{{end}}</body></html>
`))

// Index plots every experiment of exps that has a CSV under dir and writes
// dir/index.html with every figure and its table. An experiment whose plot
// fails is listed with its error; Index returns the first such error.
func Index(exps []*experiments.Experiment, dir string) error {
	type entry struct {
		Name, Title, Paper, YLabel, Err string
		// Breakdown is the breakdown figure's base name, "" if none.
		Breakdown string
		Table     Table
	}
	var entries []entry
	var first error
	for _, e := range exps {
		if _, err := os.Stat(filepath.Join(dir, e.Name, experiments.DataFile)); err != nil {
			continue
		}
		en := entry{Name: e.Name, Title: e.Title, Paper: e.Paper, YLabel: e.Figure.YLabel}
		if e.Figure.Breakdown != nil {
			en.Breakdown = BreakdownFile(e)
		}
		_, t, err := Plot(e, dir)
		if err != nil {
			en.Err = err.Error()
			first = cmpOr(first, err)
		}
		en.Table = t
		entries = append(entries, en)
	}
	f, err := os.Create(filepath.Join(dir, "index.html"))
	if err != nil {
		return err
	}
	if err := indexTmpl.Execute(f, entries); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

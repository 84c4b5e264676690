package plots

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blossom-dso/blossom/experiments"
)

func writeCSV(t *testing.T, dir, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name, experiments.DataFile), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRenderLinesWithPaperAndIndex(t *testing.T) {
	dir := t.TempDir()
	e := &experiments.Experiment{
		Name: "small", Title: "small", Params: []string{"n", "proto", "f"},
		Figure: experiments.Figure{
			Title: "small", X: "n", XLabel: "n", Y: "lat", YLabel: "ms", Series: []string{"proto", "f"},
			Paper: []experiments.PaperValue{{Series: "a f=1", X: 3, Y: 12}},
		},
	}
	writeCSV(t, dir, "small", "n,proto,f,rep,metric,value\n"+
		"3,a,1,0,lat,10\n3,a,1,1,lat,12\n3,a,1,0,other,99\n5,a,1,0,lat,8\n3,b,,0,lat,20\n5,b,,0,lat,22\n")
	stats, err := Aggregate(e, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 4 || stats[0].Series != "a f=1" || stats[0].Mean != 11 || stats[0].N != 2 || stats[0].SD == 0 {
		t.Fatalf("stats %+v", stats)
	}
	png, tab, err := Plot(e, dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(data, []byte("\x89PNG")) {
		t.Fatalf("%s is not a PNG (%v)", png, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "small", "small.svg")); err != nil {
		t.Error(err)
	}
	md := tab.Markdown()
	for _, want := range []string{"| n | a f=1 | paper: a f=1 | b |", "| 3 | 11 ± 1.4 (n=2) | 12 | 20 |", "| 5 | 8 | – | 22 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
	if err := Index([]*experiments.Experiment{e}, dir); err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(filepath.Join(dir, "index.html"))
	if !strings.Contains(string(html), `src="small/small.png"`) || !strings.Contains(string(html), "11 ± 1.4 (n=2)") {
		t.Errorf("index.html lacks the figure or its table:\n%s", html)
	}
}

func TestRenderBars(t *testing.T) {
	dir := t.TempDir()
	e := &experiments.Experiment{
		Name: "bars", Params: []string{"protocol"},
		Figure: experiments.Figure{X: "protocol", Y: "v", Bars: true},
	}
	writeCSV(t, dir, "bars", "protocol,rep,metric,value\npaxos,0,v,100\npaxos,1,v,120\natlas,0,v,50\n")
	png, err := Render(e, dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(png); err != nil || fi.Size() == 0 {
		t.Fatalf("no PNG: %v", err)
	}
	if _, err := Render(&experiments.Experiment{Name: "missing", Figure: e.Figure}, dir); err == nil {
		t.Error("Render of an experiment without CSV succeeded")
	}
}

// The breakdown figure draws the prefixed metrics at the greatest X (or
// At), and is linked from index.html; an experiment without one gets none.
func TestRenderBreakdown(t *testing.T) {
	dir := t.TempDir()
	e := &experiments.Experiment{
		Name: "sites", Params: []string{"n", "proto"},
		Figure: experiments.Figure{
			X: "n", XLabel: "n", Y: "mean", Series: []string{"proto"},
			Breakdown: &experiments.Breakdown{Prefix: "site@", Title: "per site"},
		},
	}
	writeCSV(t, dir, "sites", "n,proto,rep,metric,value\n"+
		"3,a,0,mean,10\n3,a,0,site@x,9\n3,a,0,site@y,11\n"+
		"5,a,0,mean,8\n5,a,0,site@x,7\n5,a,1,site@x,9\n5,a,0,site@z,8\n5,b,0,mean,6\n5,b,0,site@x,6\n")
	png, err := RenderBreakdown(e, dir)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(png); err != nil || !bytes.HasPrefix(data, []byte("\x89PNG")) || filepath.Base(png) != "sites-breakdown.png" {
		t.Fatalf("%s is not the breakdown PNG (%v)", png, err)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "sites", "sites-breakdown.svg"))
	if err != nil {
		t.Fatal(err)
	}
	// At n=5 the categories are x and z; y exists only at n=3.
	if !bytes.Contains(svg, []byte(">x<")) || !bytes.Contains(svg, []byte(">z<")) || bytes.Contains(svg, []byte(">y<")) || !bytes.Contains(svg, []byte("n = 5")) {
		t.Errorf("breakdown SVG lacks categories x, z at n = 5, or has y")
	}
	e.Figure.Breakdown.At = "3"
	if _, err := RenderBreakdown(e, dir); err != nil {
		t.Fatal(err)
	}
	if svg, _ := os.ReadFile(filepath.Join(dir, "sites", "sites-breakdown.svg")); !bytes.Contains(svg, []byte(">y<")) || bytes.Contains(svg, []byte(">z<")) {
		t.Errorf("breakdown at n=3 lacks y or has z")
	}
	if err := Index([]*experiments.Experiment{e}, dir); err != nil {
		t.Fatal(err)
	}
	if html, _ := os.ReadFile(filepath.Join(dir, "index.html")); !strings.Contains(string(html), `src="sites/sites-breakdown.png"`) {
		t.Errorf("index.html lacks the breakdown:\n%s", html)
	}
	e.Figure.Breakdown.At = "7"
	if _, err := RenderBreakdown(e, dir); err == nil {
		t.Error("a breakdown at an X without rows succeeded")
	}
	e.Figure.Breakdown = nil
	if png, err := RenderBreakdown(e, dir); png != "" || err != nil {
		t.Errorf("no breakdown: got %q, %v", png, err)
	}
}

// Table 2 (dso-redis-latency) as grouped bars: one bar per system in each
// operation, the paper's values beside ours in the legend and the table.
func TestRenderGroupedBarsWithPaper(t *testing.T) {
	dir := t.TempDir()
	e, err := experiments.Lookup("dso-redis-latency")
	if err != nil {
		t.Fatal(err)
	}
	writeCSV(t, dir, e.Name, "op,system,rep,metric,value\n"+
		"put,blossom,0,p50_us,80\nput,blossom,0,p99_us,270\nput,blossom,1,p50_us,90\n"+
		"put,redis,0,p50_us,60\nget,blossom,0,p50_us,81\nget,redis,0,p50_us,64\n")
	png, tab, err := Plot(e, dir)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(png); err != nil || !bytes.HasPrefix(data, []byte("\x89PNG")) {
		t.Fatalf("%s is not a PNG (%v)", png, err)
	}
	svg, err := os.ReadFile(filepath.Join(dir, e.Name, e.Name+".svg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, legend := range []string{">blossom<", ">redis<", ">paper: blossom<", ">paper: redis<"} {
		if !bytes.Contains(svg, []byte(legend)) {
			t.Errorf("the SVG has no legend entry %s", legend)
		}
	}
	md := tab.Markdown()
	for _, want := range []string{
		"| operation | blossom | paper: blossom | redis | paper: redis |",
		"| put | 85 ± 7.1 (n=2) | 231 | 60 | 232 |",
		"| get | 81 | 229 | 64 | 229 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
}

// Figure 6c (barrier): the paper's values at 1,800 parties, beyond the
// grid, are drawn with their tick and tabulated in their own row, in order.
func TestRenderPaperOutside(t *testing.T) {
	dir := t.TempDir()
	e, err := experiments.Lookup("barrier")
	if err != nil {
		t.Fatal(err)
	}
	writeCSV(t, dir, e.Name, "parties,system,rep,metric,value\n"+
		"100,blossom,0,crossing_ms,8\n10,blossom,0,crossing_ms,1\n100,blossom,0,join_s,0.1\n"+
		"10,redis,0,crossing_ms,2\n100,redis,0,crossing_ms,9\n10,zookeeper,0,crossing_ms,150\n100,zookeeper,0,crossing_ms,500\n")
	_, tab, err := Plot(e, dir)
	if err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(filepath.Join(dir, e.Name, e.Name+".svg"))
	if err != nil {
		t.Fatal(err)
	}
	// 1000 is a tick of the log y axis only (linear: 0 … 700).
	for _, want := range []string{">1800<", ">paper: zookeeper<", ">paper: blossom<", ">1000<"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("the SVG lacks %s", want)
		}
	}
	md := tab.Markdown()
	for _, want := range []string{
		"| parties (goroutines, one connection each) | blossom | paper: blossom | redis | paper: redis | zookeeper | paper: zookeeper |",
		"| 10 | 1 | – | 2 | – | 150 | – |\n| 100 | 8 | – | 9 | – | 500 | – |\n| 1800 | – | 68 | – | 68 | – | 574 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
	// A log axis refuses a value it cannot draw.
	writeCSV(t, dir, e.Name, "parties,system,rep,metric,value\n10,blossom,0,crossing_ms,0\n")
	if _, err := Render(e, dir); err == nil || !strings.Contains(err.Error(), "log y axis") {
		t.Errorf("Render of a zero on a log axis: %v", err)
	}
}

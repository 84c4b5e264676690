package experiments

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blossom-dso/blossom/experiments/barrier"
	"github.com/blossom-dso/blossom/simnet"
)

// toy is a registered-then-removed experiment that counts its measurements.
func toy(calls *int) *Experiment {
	return &Experiment{
		Name:   "toy",
		Params: []string{"n", "kind"},
		Points: func(s Size) []Point {
			ns := []string{"1", "2"}
			if s == Full {
				ns = append(ns, "3")
			}
			return grid([]string{"n", "kind"}, ns, []string{"a", "b"})
		},
		Reps: func(Size) int { return 2 },
		Measure: func(p Point, rep int, _ Size) ([]Metric, error) {
			*calls++
			return []Metric{{"x", float64(len(p.Get("n")) + rep)}, {"y", 1}}, nil
		},
		Figure: Figure{X: "n", Y: "x", Series: []string{"kind"}},
	}
}

func TestRegistry(t *testing.T) {
	var calls int
	Register(toy(&calls))
	defer unregister("toy")
	for _, want := range []string{"planet", "multicast", "simspeed", "toy"} {
		if !slices.Contains(Names(), want) {
			t.Errorf("Names() = %v, lacks %q", Names(), want)
		}
	}
	if e, err := Lookup("toy"); err != nil || e.Name != "toy" {
		t.Fatalf("Lookup(toy) = %v, %v", e, err)
	}
	if _, err := Lookup("nope"); err == nil || !strings.Contains(err.Error(), "planet") {
		t.Errorf("Lookup(nope) = %v, want an error naming the known experiments", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a duplicate Register did not panic")
			}
		}()
		Register(toy(&calls))
	}()
	for _, e := range All() {
		for _, s := range []Size{Quick, Full} {
			for _, p := range e.Points(s) {
				if len(p) != len(e.Params) {
					t.Fatalf("%s: point %v does not have the params %v", e.Name, p, e.Params)
				}
				for i, q := range p {
					if q.Name != e.Params[i] {
						t.Fatalf("%s: point %v: params out of order, want %v", e.Name, p, e.Params)
					}
				}
			}
		}
		if e.Figure.Y == "" || e.Figure.X == "" || !slices.Contains(e.Params, e.Figure.X) {
			t.Errorf("%s: figure %+v: X must be a parameter and Y a metric", e.Name, e.Figure)
		}
	}
}

func TestRunWritesCSVAndResumes(t *testing.T) {
	dir := t.TempDir()
	var calls int
	e := toy(&calls)
	env, err := Run(e, Options{Dir: dir, Size: Quick})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 8 || env.Measured != 8 || env.Skipped != 0 {
		t.Fatalf("first run: %d calls, env %+v; want 8 measured", calls, env)
	}
	header, rows, err := ReadRows(filepath.Join(dir, "toy", DataFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(header, ","); got != "n,kind,rep,metric,value" {
		t.Errorf("header %q", got)
	}
	if len(rows) != 16 { // 4 points × 2 reps × 2 metrics
		t.Errorf("%d rows, want 16", len(rows))
	}
	if _, err := os.Stat(filepath.Join(dir, "toy", EnvFile)); err != nil {
		t.Errorf("no env.json: %v", err)
	}

	// A second quick run measures nothing; a full run only the new points.
	calls = 0
	if env, err = Run(e, Options{Dir: dir, Size: Quick}); err != nil || calls != 0 || env.Skipped != 8 {
		t.Fatalf("resumed quick run: %d calls, env %+v, %v; want all 8 skipped", calls, env, err)
	}
	if env, err = Run(e, Options{Dir: dir, Size: Full}); err != nil || calls != 4 || env.Skipped != 8 {
		t.Fatalf("full run after quick: %d calls, env %+v, %v; want 4 measured", calls, env, err)
	}

	// A torn last line is dropped and its point measured again.
	path := filepath.Join(dir, "toy", DataFile)
	data, _ := os.ReadFile(path)
	lines := strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n")
	torn := strings.Join(lines[:len(lines)-2], "") + "3,b,1,x" // both rows of 3,b rep 1, the second torn
	if err := os.WriteFile(path, []byte(torn), 0o644); err != nil {
		t.Fatal(err)
	}
	calls = 0
	if _, err = Run(e, Options{Dir: dir, Size: Full}); err != nil || calls != 1 {
		t.Fatalf("run after a torn line: %d calls, %v; want 1", calls, err)
	}
	if _, rows, _ = ReadRows(path); len(rows) != 24 {
		t.Errorf("%d rows after the repair, want 24", len(rows))
	}
}

func TestOpenStoreRejectsOtherHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), DataFile)
	os.WriteFile(path, []byte("a,b\n1,2\n"), 0o644)
	if _, err := OpenStore(path, []string{"n", "rep", "metric", "value"}); err == nil {
		t.Fatal("OpenStore accepted a CSV with another header")
	}
}

func TestSteadyStatsExcludesWarmup(t *testing.T) {
	res := &simnet.Result{}
	for c := range 2 {
		for i := range 10 {
			lat := int64(10_000) // 10 ms
			if i == 0 {
				lat = 1_000_000 // the first operation waits for an election
			}
			call := int64(i) * 2_000_000
			res.History = append(res.History, simnet.Op{Client: c, Site: []string{"x", "y"}[c], Call: call, Return: call + lat, Outcome: simnet.OutcomeOK})
		}
	}
	mean, n, sites := steadyStats(res)
	if mean != 10 || n != 18 || sites["x"] != 10 || sites["y"] != 10 {
		t.Errorf("steadyStats = %v over %d, per site %v; want 10 ms over 18", mean, n, sites)
	}
}

func TestMulticastMeasure(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the simulator")
	}
	ms, err := multicast.Measure(Point{{"groups", "2"}, {"protocol", "wbcast"}, {"clients", "1"}}, 0, Quick)
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].Name != "leader_delivery_delays" || ms[0].Value < 1 || ms[0].Value > 10 {
		t.Errorf("wbcast 2 groups: %v", ms)
	}
}

// The barrier experiment measures a real barrier (Redis here: no blossom
// binary in a test) and fails clearly on what it cannot measure.
func TestBarrierMeasure(t *testing.T) {
	ms, err := barrierCrossing.Measure(Point{{"parties", "4"}, {"system", "redis"}}, 0, Quick)
	if errors.Is(err, barrier.ErrMissing) {
		t.Skipf("skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Name != "crossing_ms" || ms[0].Value <= 0 || ms[1].Name != "join_s" {
		t.Fatalf("metrics %v", ms)
	}
	old := BlossomBinary
	BlossomBinary = ""
	t.Cleanup(func() { BlossomBinary = old })
	for _, p := range []Point{
		{{"parties", "4"}, {"system", "blossom"}}, // no binary
		{{"parties", "4"}, {"system", "etcd"}},
		{{"parties", "x"}, {"system", "redis"}},
	} {
		if ms, err := barrierCrossing.Measure(p, 0, Quick); err == nil {
			t.Errorf("%v: metrics %v, want an error", p, ms)
		}
	}
}

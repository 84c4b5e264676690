package experiments

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
)

// The DSO against Redis experiments of the CRUCIAL deliverable (D4.3):
// Table 2 (1 KB PUT/GET latency) and Figure 3 (throughput of a simple and a
// complex operation). Both read the CSV of one `blossom bench-dso --csv`
// run per repetition, a child process that starts its own one-node Blossom
// server and redis-server on loopback.
func init() {
	Register(dsoRedisLatency)
	Register(dsoRedisThroughput)
}

// BlossomBinary is the blossom executable the DSO against Redis experiments
// run as `BLOSSOM bench-dso --csv FILE`. cmd/blossom sets it to its own
// executable; "" makes those experiments fail with a clear error.
var BlossomBinary string

// Log receives the experiments' remarks that are not measurements (a Redis
// series skipped); nil is os.Stderr.
var Log io.Writer

func logf(format string, args ...any) {
	w := Log
	if w == nil {
		w = os.Stderr
	}
	fmt.Fprintf(w, format, args...)
}

// BenchRow is one row of bench-dso's --csv file.
type BenchRow struct {
	Measurement, System, Metric string
	Value                       float64
}

// benchHeader is the header of bench-dso's --csv file.
var benchHeader = []string{"measurement", "system", "metric", "value"}

// ParseBenchCSV parses the --csv output of `blossom bench-dso`: a header
// measurement,system,metric,value and one row per value. A missing or
// different header, a row of another width or a value that is not a
// finite number is an error.
func ParseBenchCSV(data []byte) ([]BenchRow, error) {
	all, err := readCSV(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("bench-dso csv: %w", err)
	}
	if len(all) == 0 || fmt.Sprint(all[0]) != fmt.Sprint(benchHeader) {
		return nil, fmt.Errorf("bench-dso csv: want header %v", benchHeader)
	}
	var rows []BenchRow
	for i, r := range all[1:] {
		if len(r) != len(benchHeader) {
			return nil, fmt.Errorf("bench-dso csv: line %d: %d fields, want %d", i+2, len(r), len(benchHeader))
		}
		v, err := strconv.ParseFloat(r[3], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("bench-dso csv: line %d: value %q is not a finite number", i+2, r[3])
		}
		rows = append(rows, BenchRow{r[0], r[1], r[2], v})
	}
	return rows, nil
}

// benchRuns caches one bench-dso run per (size, repetition): the points of
// both experiments (every operation and system) of one repetition come
// from the same run, as the deliverable measured them side by side.
var benchRuns = struct {
	sync.Mutex
	rows map[[2]int][]BenchRow
}{rows: map[[2]int][]BenchRow{}}

// runBenchDSO runs `BlossomBinary bench-dso [--quick] --csv FILE` once and
// returns its rows.
func runBenchDSO(size Size) ([]BenchRow, error) {
	if BlossomBinary == "" {
		return nil, errors.New("dso-redis: no blossom binary to run bench-dso (run the experiment as `blossom exp run`)")
	}
	dir, err := os.MkdirTemp("", "blossom-dso-redis-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "bench.csv")
	args := []string{"bench-dso", "--csv", file}
	if size == Quick {
		args = append(args, "--quick")
	}
	var out bytes.Buffer
	cmd := exec.Command(BlossomBinary, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("dso-redis: %s %v: %w\n%s", BlossomBinary, args, err, out.String())
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("dso-redis: %s wrote no CSV: %w\n%s", BlossomBinary, err, out.String())
	}
	rows, err := ParseBenchCSV(data)
	if err != nil {
		return nil, err
	}
	if !hasSystem(rows, "redis") {
		logf("dso-redis: bench-dso measured no Redis (redis-server missing? Debian: apt-get install redis-server); Redis rows skipped\n")
	}
	return rows, nil
}

func hasSystem(rows []BenchRow, system string) bool {
	for _, r := range rows {
		if r.System == system {
			return true
		}
	}
	return false
}

// benchPoint returns the metrics of measurement and system in repetition
// rep's bench-dso run, running it if this process has not yet. A system the
// run did not measure (Redis absent) has no metrics: no rows.
func benchPoint(measurement, system string, rep int, size Size) ([]Metric, error) {
	benchRuns.Lock()
	defer benchRuns.Unlock()
	key := [2]int{int(size), rep}
	rows, ok := benchRuns.rows[key]
	if !ok {
		var err error
		if rows, err = runBenchDSO(size); err != nil {
			return nil, err
		}
		benchRuns.rows[key] = rows
	}
	var ms []Metric
	for _, r := range rows {
		if r.Measurement == measurement && r.System == system {
			ms = append(ms, Metric{r.Metric, r.Value})
		}
	}
	if len(ms) == 0 && system == "blossom" {
		return nil, fmt.Errorf("dso-redis: bench-dso's CSV has no %s rows of blossom", measurement)
	}
	return ms, nil
}

// dsoRedisReps is the repetitions (bench-dso runs) of both experiments.
func dsoRedisReps(s Size) int { return 3 }

var dsoRedisLatency = &Experiment{
	Name:   "dso-redis-latency",
	Title:  "1 KB PUT/GET latency of one sequential client, one-node Blossom vs Redis on loopback (D4.3 Table 2)",
	Paper:  "CloudButton D4.3 (CRUCIAL), Table 2: average latency, 1 KB payload, AWS r5.2xlarge, 30K operations",
	Params: []string{"op", "system"},
	Points: func(Size) []Point {
		return grid([]string{"op", "system"}, []string{"put", "get"}, []string{"blossom", "redis"})
	},
	Reps: dsoRedisReps,
	Measure: func(p Point, rep int, size Size) ([]Metric, error) {
		return benchPoint(p.Get("op"), p.Get("system"), rep, size)
	},
	Figure: Figure{
		Title: "1 KB PUT/GET latency, one sequential client (D4.3 Table 2)", X: "op", XLabel: "operation",
		Y: "p50_us", YLabel: "median latency (µs)", Series: []string{"system"}, Bars: true,
		// Table 2's averages (µs), CRUCIAL as blossom.
		Paper: []PaperValue{
			{Series: "blossom", XName: "put", Y: 231}, {Series: "blossom", XName: "get", Y: 229},
			{Series: "redis", XName: "put", Y: 232}, {Series: "redis", XName: "get", Y: 229},
		},
	},
}

var dsoRedisThroughput = &Experiment{
	Name:   "dso-redis-throughput",
	Title:  "Throughput of 200 clients over 800 objects, simple (1 multiplication) and complex (10,000) operations, Blossom vs Redis Lua (D4.3 Figure 3, rf 1)",
	Paper:  "CloudButton D4.3 (CRUCIAL), Figure 3 (text: Redis 50% faster on the simple operation, CRUCIAL almost 5x faster on the complex one)",
	Params: []string{"op", "system"},
	Points: func(Size) []Point {
		return grid([]string{"op", "system"}, []string{"simple", "complex"}, []string{"blossom", "redis"})
	},
	Reps: dsoRedisReps,
	Measure: func(p Point, rep int, size Size) ([]Metric, error) {
		return benchPoint("throughput_"+p.Get("op"), p.Get("system"), rep, size)
	},
	Figure: Figure{
		Title: "Throughput, 200 clients, 800 objects (D4.3 Figure 3, rf 1)", X: "op", XLabel: "operation",
		Y: "ops_per_s", YLabel: "operations per second", Series: []string{"system"}, Bars: true,
	},
}

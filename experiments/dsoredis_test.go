package experiments

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const benchCSVSample = `measurement,system,metric,value
put,blossom,p50_us,82.5
put,blossom,p99_us,274
get,blossom,p50_us,81.6
get,blossom,p99_us,296
put,redis,p50_us,59.5
put,redis,p99_us,248
get,redis,p50_us,64.4
get,redis,p99_us,278
throughput_simple,blossom,ops_per_s,32838
throughput_simple,redis,ops_per_s,25858
throughput_complex,blossom,ops_per_s,12192
throughput_complex,redis,ops_per_s,4135
barrier,blossom,crossing_ms,48.9
`

func TestParseBenchCSV(t *testing.T) {
	rows, err := ParseBenchCSV([]byte(benchCSVSample))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 13 || rows[0] != (BenchRow{"put", "blossom", "p50_us", 82.5}) || rows[11].Value != 4135 {
		t.Fatalf("rows %v", rows)
	}
	for _, bad := range []string{
		"",                                   // no header
		"a,b,c,d\nput,blossom,p50_us,1\n",    // another header
		benchHeader2() + "put,blossom,1\n",   // short row
		benchHeader2() + "put,blossom,x,y\n", // not a number
		benchHeader2() + "put,blossom,x,NaN\n",
		benchHeader2() + "put,blossom,x,+Inf\n",
		benchHeader2() + "put,\"blossom,x,1\n", // broken quoting
	} {
		if rows, err := ParseBenchCSV([]byte(bad)); err == nil {
			t.Errorf("ParseBenchCSV(%q) = %v, want an error", bad, rows)
		}
	}
}

func benchHeader2() string { return strings.Join(benchHeader, ",") + "\n" }

func FuzzParseBenchCSV(f *testing.F) {
	f.Add([]byte(benchCSVSample))
	f.Add([]byte(benchHeader2() + "put,blossom,x,1e400\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := ParseBenchCSV(data)
		if err != nil {
			return
		}
		for _, r := range rows {
			if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
				t.Fatalf("accepted a non-finite value: %v", r)
			}
		}
		if n := bytes.Count(data, []byte("\n")) + 1; len(rows) > n {
			t.Fatalf("%d rows from %d lines", len(rows), n)
		}
	})
}

// fakeBench writes a shell script standing in for the blossom binary: it
// appends a line to calls on every run and writes csv to the file after
// --csv. It returns the script's path and the calls file.
func fakeBench(t *testing.T, csv string) (bin, calls string) {
	t.Helper()
	dir := t.TempDir()
	bin, calls = filepath.Join(dir, "blossom"), filepath.Join(dir, "calls")
	data := filepath.Join(dir, "out.csv")
	if err := os.WriteFile(data, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`#!/bin/sh
echo "$*" >> %q
while [ $# -gt 0 ]; do
  if [ "$1" = --csv ]; then cp %q "$2"; fi
  shift
done
`, calls, data)
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, calls
}

// runDSORedis runs both DSO against Redis experiments at Quick into a new
// folder with bin as the blossom binary and returns the folder and the
// remarks logged.
func runDSORedis(t *testing.T, bin string) (dir, log string) {
	t.Helper()
	oldBin, oldLog := BlossomBinary, Log
	var buf bytes.Buffer
	BlossomBinary, Log = bin, &buf
	benchRuns.Lock()
	clear(benchRuns.rows)
	benchRuns.Unlock()
	t.Cleanup(func() {
		BlossomBinary, Log = oldBin, oldLog
		benchRuns.Lock()
		clear(benchRuns.rows)
		benchRuns.Unlock()
	})
	dir = t.TempDir()
	for _, e := range []*Experiment{dsoRedisLatency, dsoRedisThroughput} {
		if _, err := Run(e, Options{Dir: dir, Size: Quick}); err != nil {
			t.Fatal(err)
		}
	}
	return dir, buf.String()
}

// One bench-dso run per repetition feeds every point of both experiments,
// each row lands at its (op, system) point, and a run without Redis gives
// Blossom-only rows and says so.
func TestDSORedisFromBenchCSV(t *testing.T) {
	bin, calls := fakeBench(t, benchCSVSample)
	dir, log := runDSORedis(t, bin)
	runs, _ := os.ReadFile(calls)
	if got := strings.Count(string(runs), "\n"); got != dsoRedisReps(Quick) || !strings.Contains(string(runs), "bench-dso --csv ") || !strings.Contains(string(runs), "--quick") {
		t.Errorf("bench-dso ran %d times (want %d, once per repetition), as:\n%s", got, dsoRedisReps(Quick), runs)
	}
	if log != "" {
		t.Errorf("remarks with Redis present: %q", log)
	}
	_, rows, err := ReadRows(filepath.Join(dir, "dso-redis-latency", DataFile))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"put,redis,2,p50_us,59.5": true, "get,blossom,0,p99_us,296": true}
	for _, r := range rows {
		delete(want, strings.Join(r, ","))
	}
	if len(rows) != 4*2*dsoRedisReps(Quick) || len(want) > 0 {
		t.Errorf("latency rows %v: %d, missing %v", rows, len(rows), want)
	}
	_, rows, err = ReadRows(filepath.Join(dir, "dso-redis-throughput", DataFile))
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]bool{"simple,redis,0,ops_per_s,25858": true, "complex,blossom,1,ops_per_s,12192": true}
	for _, r := range rows {
		delete(want, strings.Join(r, ","))
	}
	if len(rows) != 4*dsoRedisReps(Quick) || len(want) > 0 {
		t.Errorf("throughput rows %v: %d, missing %v", rows, len(rows), want)
	}

	var blossomOnly strings.Builder
	for _, l := range strings.SplitAfter(benchCSVSample, "\n") {
		if !strings.Contains(l, ",redis,") {
			blossomOnly.WriteString(l)
		}
	}
	bin, _ = fakeBench(t, blossomOnly.String())
	dir, log = runDSORedis(t, bin)
	if !strings.Contains(log, "Redis rows skipped") {
		t.Errorf("no remark on the missing Redis: %q", log)
	}
	_, rows, err = ReadRows(filepath.Join(dir, "dso-redis-throughput", DataFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r[1] != "blossom" {
			t.Errorf("row %v without Redis", r)
		}
	}
	if len(rows) != 2*dsoRedisReps(Quick) {
		t.Errorf("%d Blossom-only throughput rows, want %d", len(rows), 2*dsoRedisReps(Quick))
	}
}

// A bench-dso that fails, writes no Blossom rows, or is not there is a
// measurement error, not an empty point.
func TestDSORedisErrors(t *testing.T) {
	bin, _ := fakeBench(t, benchHeader2()+"put,redis,p50_us,1\n")
	oldBin := BlossomBinary
	t.Cleanup(func() { BlossomBinary = oldBin; clear(benchRuns.rows) })
	for _, b := range []string{"", bin, filepath.Join(t.TempDir(), "missing")} {
		BlossomBinary = b
		clear(benchRuns.rows)
		if ms, err := dsoRedisLatency.Measure(Point{{"op", "put"}, {"system", "blossom"}}, 0, Quick); err == nil {
			t.Errorf("binary %q: metrics %v, want an error", b, ms)
		}
	}
}

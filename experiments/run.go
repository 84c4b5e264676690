package experiments

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// DataFile and EnvFile are the names of an experiment's files in its
// results folder.
const (
	DataFile = "data.csv"
	EnvFile  = "env.json"
)

// Header returns the CSV header of e: its parameters, rep, metric, value.
func (e *Experiment) Header() []string {
	return append(append([]string{}, e.Params...), "rep", "metric", "value")
}

// Store is an experiment's CSV file opened for resuming and appending.
type Store struct {
	path   string
	header []string
	done   map[string]bool
}

// OpenStore reads the CSV at path, if it exists, and remembers which
// (point, repetition) keys it holds. A file with another header is an
// error: its rows would not be comparable. A torn last line (a run killed
// mid-write) is ignored and its point measured again.
func OpenStore(path string, header []string) (*Store, error) {
	s := &Store{path: path, header: header, done: map[string]bool{}}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if len(data) > 0 && data[len(data)-1] != '\n' { // torn tail: drop it
		data = data[:bytes.LastIndexByte(data, '\n')+1]
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return nil, err
		}
	}
	rows, err := readCSV(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("experiments: %s: %w", path, err)
	}
	if len(rows) == 0 {
		return s, nil
	}
	if strings.Join(rows[0], ",") != strings.Join(header, ",") {
		return nil, fmt.Errorf("experiments: %s: header %v, want %v (move the old file away)", path, rows[0], header)
	}
	np := len(header) - 3
	for _, r := range rows[1:] {
		if len(r) != len(header) {
			continue
		}
		s.done[rowKey(header[:np], r)] = true
	}
	return s, nil
}

// rowKey is the resume key of a CSV row: Point.Key of its parameters and rep.
func rowKey(params []string, r []string) string {
	p := make(Point, len(params))
	for i, n := range params {
		p[i] = Param{n, r[i]}
	}
	rep, _ := strconv.Atoi(r[len(params)])
	return p.Key(rep)
}

// Done reports whether the CSV holds repetition rep of p.
func (s *Store) Done(p Point, rep int) bool { return s.done[p.Key(rep)] }

// Append writes the metrics of repetition rep of p, one row each, in one
// write, and marks it done.
func (s *Store) Append(p Point, rep int, ms []Metric) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if _, err := os.Stat(s.path); os.IsNotExist(err) {
		w.Write(s.header)
	}
	for _, m := range ms {
		row := make([]string, 0, len(s.header))
		for _, q := range p {
			row = append(row, q.Value)
		}
		row = append(row, strconv.Itoa(rep), m.Name, strconv.FormatFloat(m.Value, 'g', 8, 64))
		w.Write(row)
	}
	w.Flush()
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	s.done[p.Key(rep)] = true
	return nil
}

// ReadRows reads an experiment's CSV: its header and rows.
func ReadRows(path string) (header []string, rows [][]string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	all, err := readCSV(bufio.NewReader(f))
	if err != nil {
		return nil, nil, fmt.Errorf("experiments: %s: %w", path, err)
	}
	if len(all) == 0 {
		return nil, nil, fmt.Errorf("experiments: %s: empty", path)
	}
	for _, r := range all[1:] {
		if len(r) == len(all[0]) {
			rows = append(rows, r)
		}
	}
	return all[0], rows, nil
}

func readCSV(r io.Reader) ([][]string, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	return cr.ReadAll()
}

// Env is the environment of a run, written to env.json.
type Env struct {
	Experiment string    `json:"experiment"`
	Size       string    `json:"size"`
	Commit     string    `json:"commit"`
	Dirty      bool      `json:"dirty"`
	GoVersion  string    `json:"go_version"`
	OS         string    `json:"os"`
	Arch       string    `json:"arch"`
	CPU        string    `json:"cpu"`
	NumCPU     int       `json:"num_cpu"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	Date       time.Time `json:"date"`
	Args       []string  `json:"args"`
	// Measured and Skipped count this run's (point, repetition) pairs
	// measured and those resumed from the CSV.
	Measured int     `json:"measured"`
	Skipped  int     `json:"skipped"`
	WallSecs float64 `json:"wall_seconds"`
}

// CurrentEnv describes this process's environment for experiment name.
func CurrentEnv(name string, size Size) Env {
	env := Env{
		Experiment: name, Size: size.String(), GoVersion: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, CPU: cpuModel(), NumCPU: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), Date: time.Now().UTC(), Args: os.Args,
	}
	if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		env.Commit = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
		env.Dirty = len(bytes.TrimSpace(out)) > 0
	}
	return env
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// Options are the options of Run.
type Options struct {
	// Dir is the results root; the experiment writes to Dir/NAME.
	Dir string
	// Size is the grid to run.
	Size Size
	// Progress receives a line per measured point and a summary; nil is
	// silent.
	Progress io.Writer
	// Every is the least time between two progress lines (0: every point).
	Every time.Duration
	// Measure, if set, replaces the experiment's own Measure (a remote
	// target, package experiments/remote).
	Measure func(e *Experiment, p Point, rep int, size Size) ([]Metric, error)
	// Fits, if set, leaves out the points it rejects (a deployment too
	// small for them); they count as neither measured nor skipped.
	Fits func(Point) bool
}

// Run measures every (point, repetition) of e's grid that the CSV does not
// hold yet, appending each as it completes, and writes env.json. A failed
// measurement stops the run; the points before it stay in the CSV.
func Run(e *Experiment, o Options) (Env, error) {
	dir := filepath.Join(o.Dir, e.Name)
	env := CurrentEnv(e.Name, o.Size)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return env, err
	}
	st, err := OpenStore(filepath.Join(dir, DataFile), e.Header())
	if err != nil {
		return env, err
	}
	pts, reps := e.Points(o.Size), e.Reps(o.Size)
	total := len(pts) * reps
	start, last := time.Now(), time.Time{}
	n := 0
	measure := func(p Point, rep int) ([]Metric, error) { return e.Measure(p, rep, o.Size) }
	if o.Measure != nil {
		measure = func(p Point, rep int) ([]Metric, error) { return o.Measure(e, p, rep, o.Size) }
	}
	for _, p := range pts {
		if o.Fits != nil && !o.Fits(p) {
			n += reps
			continue
		}
		for rep := range reps {
			n++
			if st.Done(p, rep) {
				env.Skipped++
				continue
			}
			t0 := time.Now()
			ms, err := measure(p, rep)
			if err != nil {
				return env, fmt.Errorf("experiments: %s: %s rep %d: %w", e.Name, p, rep, err)
			}
			if err := st.Append(p, rep, ms); err != nil {
				return env, err
			}
			env.Measured++
			if o.Progress != nil && time.Since(last) >= o.Every {
				last = time.Now()
				elapsed := time.Since(start)
				eta := time.Duration(0)
				if env.Measured > 0 {
					eta = elapsed / time.Duration(env.Measured) * time.Duration(total-n)
				}
				fmt.Fprintf(o.Progress, "%s [%d/%d] %s rep %d: %.2fs (elapsed %s, eta %s)\n",
					e.Name, n, total, p, rep, time.Since(t0).Seconds(), elapsed.Round(time.Second), eta.Round(time.Second))
			}
		}
	}
	env.WallSecs = time.Since(start).Seconds()
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "%s: %d measured, %d already in %s, %.1fs\n", e.Name, env.Measured, env.Skipped, DataFile, env.WallSecs)
	}
	data, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return env, err
	}
	return env, os.WriteFile(filepath.Join(dir, EnvFile), append(data, '\n'), 0o644)
}

// Package iterml runs an iterative learning algorithm whose iterations
// reduce one vector of statistics over data partitions — k-means (sums and
// counts per cluster) and logistic regression (the gradient) — in two
// ways, on the executor of the context:
//
//   - RunDSO, CRUCIAL's way (deliverable Listing 5): one long-running
//     cloud thread per partition loads its partition once, and in every
//     iteration adds its partial statistics to a shared Matrix of that
//     iteration (one addRow call), crosses a CyclicBarrier, reads the sum
//     (toArray) and updates its copy of the model. Every thread computes
//     the same model from the same sum.
//   - RunFiles, the stateless baseline (PyWren's way): functions exchange
//     state only through files in a shared directory. Each iteration is a
//     map phase (one invocation per partition: read the model file and the
//     partition, write a partial file) and a reduce invocation (read the
//     partials in partition order, write the next model file), started by
//     the driver after the map phase.
//
// Both start from the same model (Algo.Init) on the same partitions and
// so compute the same models up to the order of floating-point additions.
// Partitions are files of little-endian float64 rows written by
// WritePartition; the data directory must be visible to every worker (a
// local directory for the local, process and http back ends of one
// machine).
package iterml

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/executor"
)

// Job describes one run of an algorithm.
type Job struct {
	// Run names the run's DSO objects (Run+"/...") and its directory of
	// files under Dir/runs.
	Run string
	// Dir holds the partitions (WritePartition) and the baseline's files.
	Dir string
	// Parts is the number of partitions, one worker each.
	Parts int
	// Dim is the number of features of a row; a row has Dim+1 values, the
	// last a label (unused by k-means).
	Dim int
	// Iterations is the number of iterations.
	Iterations int
	// K is the number of clusters (k-means).
	K int
	// Rate is the learning rate (logistic regression).
	Rate float64
	// Seed chooses the initial model.
	Seed uint64
}

// Algo is an algorithm whose iteration is one sum over the partitions.
type Algo struct {
	// Name prefixes the registered function names.
	Name string
	// Init returns the initial model; it must be deterministic in j.
	Init func(j Job) []float64
	// Partial returns the statistics of rows (a partition, Dim+1 values
	// per row) under model; every partition's vector has the same length.
	Partial func(j Job, model, rows []float64) []float64
	// Update returns the next model from the model and the sum of the
	// partitions' statistics.
	Update func(j Job, model, sum []float64) []float64
}

// Funcs are an algorithm's registered functions.
type Funcs struct {
	algo   Algo
	worker executor.Func[executor.Chunk[Job], Report]
	mapper executor.Func[Step, int]
	reduce executor.Func[Step, int]
}

// Step names one partition (map) or none (reduce) of one iteration of the
// baseline.
type Step struct {
	Job  Job
	Iter int
	Part int
}

// Report is what a cloud thread of RunDSO returns.
type Report struct {
	// Model is the final model.
	Model []float64
	// Iter holds the time of each iteration as the thread saw it, in
	// nanoseconds, from the start of its computation to the barrier's
	// opening and its model update.
	Iter []int64
}

// Result is the outcome of a run.
type Result struct {
	// Model is the final model.
	Model []float64
	// Iter holds the time of each iteration.
	Iter []time.Duration
}

// PerIteration returns the mean iteration time.
func (r Result) PerIteration() time.Duration {
	if len(r.Iter) == 0 {
		return 0
	}
	var s time.Duration
	for _, d := range r.Iter {
		s += d
	}
	return s / time.Duration(len(r.Iter))
}

// Register registers a's functions NAME.dso, NAME.map and NAME.reduce.
// Call it from a package-level variable, like executor.Register.
func Register(a Algo) Funcs {
	f := Funcs{algo: a}
	f.worker = executor.Register(a.Name+".dso", func(ctx context.Context, c executor.Chunk[Job]) (Report, error) {
		return dsoWorker(ctx, a, c)
	})
	f.mapper = executor.Register(a.Name+".map", func(ctx context.Context, s Step) (int, error) {
		return mapStep(a, s)
	})
	f.reduce = executor.Register(a.Name+".reduce", func(ctx context.Context, s Step) (int, error) {
		return reduceStep(a, s)
	})
	return f
}

func (j Job) check() error {
	if j.Run == "" || j.Dir == "" || j.Parts <= 0 || j.Dim <= 0 || j.Iterations <= 0 {
		return fmt.Errorf("iterml: bad job %+v", j)
	}
	return nil
}

// PartitionPath is the file of partition p in dir.
func PartitionPath(dir string, p int) string {
	return filepath.Join(dir, fmt.Sprintf("part-%04d.f64", p))
}

// WritePartition writes rows (float64 values) as partition p of dir.
func WritePartition(dir string, p int, rows []float64) error {
	b := make([]byte, 8*len(rows))
	for i, x := range rows {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return writeAtomic(PartitionPath(dir, p), b)
}

// ReadPartition reads partition p of dir, which must hold whole rows of
// dim+1 values.
func ReadPartition(dir string, p, dim int) ([]float64, error) {
	b, err := os.ReadFile(PartitionPath(dir, p))
	if err != nil {
		return nil, err
	}
	rows, err := DecodeRows(b, dim)
	if err != nil {
		return nil, fmt.Errorf("iterml: %s: %w", PartitionPath(dir, p), err)
	}
	return rows, nil
}

// DecodeRows decodes little-endian float64 values that must make whole
// rows of dim+1 values.
func DecodeRows(b []byte, dim int) ([]float64, error) {
	if dim < 0 || len(b)%(8*(dim+1)) != 0 {
		return nil, fmt.Errorf("%d bytes is not a whole number of rows of %d values", len(b), dim+1)
	}
	rows := make([]float64, len(b)/8)
	for i := range rows {
		rows[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return rows, nil
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func dsoWorker(ctx context.Context, a Algo, c executor.Chunk[Job]) (Report, error) {
	j := c.Arg
	if c.To-c.From != 1 {
		return Report{}, executor.Permanent(fmt.Errorf("iterml: a worker takes one partition, not [%d, %d)", c.From, c.To))
	}
	cl, err := executor.DSO(ctx)
	if err != nil {
		return Report{}, err
	}
	rows, err := ReadPartition(j.Dir, c.From, j.Dim)
	if err != nil {
		return Report{}, err
	}
	bar := dso.NewCyclicBarrier(cl, j.Run+"/barrier", j.Parts)
	// Everyone has loaded its partition when the computation starts
	// (start-up and loading are not timed, as in the deliverable).
	if _, err := bar.Await(ctx); err != nil {
		return Report{}, err
	}
	model := a.Init(j)
	var rep Report
	for it := range j.Iterations {
		start := time.Now()
		st := a.Partial(j, model, rows)
		acc := dso.NewMatrix(cl, accKey(j, it), 1, len(st))
		if _, err := acc.Call(ctx, "addRow", int64(0), st); err != nil {
			return rep, err
		}
		if _, err := bar.Await(ctx); err != nil {
			return rep, err
		}
		sum, err := acc.ToArray(ctx)
		if err != nil {
			return rep, err
		}
		model = a.Update(j, model, sum)
		rep.Iter = append(rep.Iter, int64(time.Since(start)))
		if c.From == 0 && it > 0 {
			// Everyone read the previous sum before adding to this one.
			if _, err := cl.Delete(ctx, dso.Ref{Type: dso.TypeMatrix, Key: accKey(j, it-1)}); err != nil {
				return rep, err
			}
		}
	}
	rep.Model = model
	// The last sum is deleted once everyone has read it.
	if _, err := bar.Await(ctx); err != nil {
		return rep, err
	}
	if c.From == 0 {
		if _, err := cl.Delete(ctx, dso.Ref{Type: dso.TypeMatrix, Key: accKey(j, j.Iterations-1)}); err != nil {
			return rep, err
		}
		if _, err := cl.Delete(ctx, bar.Ref()); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func accKey(j Job, it int) string { return fmt.Sprintf("%s/acc/%d", j.Run, it) }

// RunDSO runs j with shared objects: one cloud thread per partition, a
// barrier per iteration. The iteration times are thread 0's. Thread 0
// deletes each iteration's sum once every thread has read it, and the
// barrier at the end.
func (f Funcs) RunDSO(ctx context.Context, j Job) (Result, error) {
	if err := j.check(); err != nil {
		return Result{}, err
	}
	out, err := executor.InvokeIterative(ctx, f.worker, 0, j.Parts, j.Parts, j,
		executor.WithRetry(executor.RetryPolicy{Attempts: 1})) // barriers: no retries
	if err != nil {
		return Result{}, err
	}
	for w, r := range out[1:] {
		if !equal(r.Model, out[0].Model) {
			return Result{}, fmt.Errorf("iterml: thread %d ended with another model than thread 0", w+1)
		}
	}
	res := Result{Model: out[0].Model}
	for _, d := range out[0].Iter {
		res.Iter = append(res.Iter, time.Duration(d))
	}
	return res, nil
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func runDir(j Job) string { return filepath.Join(j.Dir, "runs", j.Run) }
func modelPath(j Job, it int) string {
	return filepath.Join(runDir(j), fmt.Sprintf("model-%d.json", it))
}
func partialPath(j Job, it, p int) string {
	return filepath.Join(runDir(j), fmt.Sprintf("partial-%d-%d.json", it, p))
}

func writeJSON(path string, v []float64) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeAtomic(path, b)
}

func readJSON(path string) ([]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v []float64
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("iterml: %s: %w", path, err)
	}
	return v, nil
}

// mapStep is one stateless map invocation: it reads the iteration's model
// and its partition from storage and writes its statistics.
func mapStep(a Algo, s Step) (int, error) {
	model, err := readJSON(modelPath(s.Job, s.Iter))
	if err != nil {
		return 0, err
	}
	rows, err := ReadPartition(s.Job.Dir, s.Part, s.Job.Dim)
	if err != nil {
		return 0, err
	}
	st := a.Partial(s.Job, model, rows)
	return len(st), writeJSON(partialPath(s.Job, s.Iter, s.Part), st)
}

// reduceStep sums the partials of an iteration in partition order and
// writes the next model.
func reduceStep(a Algo, s Step) (int, error) {
	model, err := readJSON(modelPath(s.Job, s.Iter))
	if err != nil {
		return 0, err
	}
	var sum []float64
	for p := range s.Job.Parts {
		st, err := readJSON(partialPath(s.Job, s.Iter, p))
		if err != nil {
			return 0, err
		}
		if sum == nil {
			sum = make([]float64, len(st))
		}
		if len(st) != len(sum) {
			return 0, executor.Permanent(fmt.Errorf("iterml: partial %d of iteration %d has %d values, not %d", p, s.Iter, len(st), len(sum)))
		}
		for i, x := range st {
			sum[i] += x
		}
	}
	next := a.Update(s.Job, model, sum)
	return len(next), writeJSON(modelPath(s.Job, s.Iter+1), next)
}

// RunFiles runs j as the stateless baseline: per iteration, a map
// invocation per partition and a reduce invocation, exchanging the model
// and the partial statistics as files under Dir/runs/Run, which it
// removes at the end. The iteration times are the driver's, from the
// start of the map phase to the end of the reduce.
func (f Funcs) RunFiles(ctx context.Context, j Job) (Result, error) {
	if err := j.check(); err != nil {
		return Result{}, err
	}
	if err := os.MkdirAll(runDir(j), 0o755); err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(runDir(j))
	if err := writeJSON(modelPath(j, 0), f.algo.Init(j)); err != nil {
		return Result{}, err
	}
	var res Result
	steps := make([]Step, j.Parts)
	for it := range j.Iterations {
		start := time.Now()
		for p := range steps {
			steps[p] = Step{Job: j, Iter: it, Part: p}
		}
		if _, err := executor.InvokeAll(ctx, f.mapper, steps); err != nil {
			return Result{}, err
		}
		if _, err := executor.Go(ctx, f.reduce, Step{Job: j, Iter: it}).Get(); err != nil {
			return Result{}, err
		}
		res.Iter = append(res.Iter, time.Since(start))
	}
	m, err := readJSON(modelPath(j, j.Iterations))
	if err != nil {
		return Result{}, err
	}
	res.Model = m
	return res, nil
}

// MaxDiff returns the largest absolute difference between a and b, or an
// error if their lengths differ.
func MaxDiff(a, b []float64) (float64, error) {
	if len(a) != len(b) {
		return 0, errors.New("iterml: models of different lengths")
	}
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(a[i]-b[i]))
	}
	return d, nil
}

package ycsb

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"

	"github.com/blossom-dso/blossom/pmem/kv"
)

// Backend names a store and opens a fresh one in a directory.
type Backend struct {
	Name string
	Open func(dir string, cfg Config) (kv.Store, error)
}

// HeapSize is the pmem heap size used for a run of cfg: room for the loaded
// records, the inserts of D and E, and slack.
func HeapSize(cfg Config) int64 {
	cfg = cfg.withDefaults()
	per := int64(cfg.Fields*(cfg.FieldLength+48) + 512)
	return max(64<<20, 2*per*int64(cfg.Records+cfg.Ops))
}

// FileCacheRecords is the file store's cache size for a run of cfg: 10% of
// the loaded records, J-NVM's setting for Infinispan's data container.
func FileCacheRecords(cfg Config) int {
	return max(1, cfg.withDefaults().Records/10)
}

// Backends are the four stores of the comparison, in table order: the pmem
// heap, the file store, memory, and bbolt.
var Backends = []Backend{
	{"pmem", func(dir string, cfg Config) (kv.Store, error) {
		return kv.OpenPmem(filepath.Join(dir, "ycsb.heap"), HeapSize(cfg))
	}},
	{"file", func(dir string, cfg Config) (kv.Store, error) {
		return kv.OpenFile(filepath.Join(dir, "ycsb.dat"), FileCacheRecords(cfg))
	}},
	{"memory", func(string, Config) (kv.Store, error) { return kv.NewMemory(), nil }},
	{"bbolt", func(dir string, _ Config) (kv.Store, error) { return kv.OpenBolt(filepath.Join(dir, "ycsb.bolt")) }},
}

// Table holds ops/s per workload per back end.
type Table struct {
	Backends  []string
	Workloads []string
	OpsPerSec map[string]map[string]float64 // workload -> backend -> ops/s
	// OpsPerCPUSec is workload -> backend -> ops per CPU-second of the
	// process (empty where CPU time cannot be measured).
	OpsPerCPUSec map[string]map[string]float64
}

// TableOptions are RunTable's optional settings.
type TableOptions struct {
	// Log receives a progress line per run (nil: none).
	Log io.Writer
	// CPUProfile, if set, is a path prefix: the run of each workload on each
	// back end writes its CPU profile to PREFIX.BACKEND.WORKLOAD.pprof.
	CPUProfile string
}

// RunTable loads a fresh store of every back end in its own directory under
// dir (removed afterwards), runs the workloads in order on it, and returns
// the throughputs.
func RunTable(dir string, backends []Backend, workloads []Workload, cfg Config, opts TableOptions) (Table, error) {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	t := Table{OpsPerSec: map[string]map[string]float64{}, OpsPerCPUSec: map[string]map[string]float64{}}
	for _, w := range workloads {
		t.Workloads = append(t.Workloads, w.Name)
		t.OpsPerSec[w.Name] = map[string]float64{}
		t.OpsPerCPUSec[w.Name] = map[string]float64{}
	}
	for _, b := range backends {
		t.Backends = append(t.Backends, b.Name)
		d, err := os.MkdirTemp(dir, "ycsb-"+b.Name+"-")
		if err != nil {
			return t, err
		}
		err = func() error {
			defer os.RemoveAll(d)
			s, err := b.Open(d, cfg)
			if err != nil {
				return err
			}
			defer s.Close()
			r := NewRunner(s, cfg)
			if err := r.Load(); err != nil {
				return fmt.Errorf("%s: load: %w", b.Name, err)
			}
			for _, w := range workloads {
				stop, err := startProfile(opts.CPUProfile, b.Name, w.Name)
				if err != nil {
					return err
				}
				res, err := r.Run(w)
				if perr := stop(); err == nil {
					err = perr
				}
				if err != nil {
					return fmt.Errorf("%s: %w", b.Name, err)
				}
				t.OpsPerSec[w.Name][b.Name] = res.OpsPerSec()
				t.OpsPerCPUSec[w.Name][b.Name] = res.OpsPerCPUSec()
				fmt.Fprintf(log, "%-6s %s %10.0f ops/s %10.0f ops/CPU-s\n", b.Name, w.Name, res.OpsPerSec(), res.OpsPerCPUSec())
			}
			return nil
		}()
		if err != nil {
			return t, err
		}
	}
	return t, nil
}

// startProfile starts a CPU profile to prefix.backend.workload.pprof (no
// profile if prefix is empty) and returns the function that stops it.
func startProfile(prefix, backend, workload string) (stop func() error, err error) {
	if prefix == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(fmt.Sprintf("%s.%s.%s.pprof", prefix, backend, workload))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// Format writes the table of ops/s (wall clock), with pmem/file and
// pmem/bbolt ratios when those back ends are present, then the same table
// in ops per CPU-second if CPU time was measured.
func (t Table) Format(w io.Writer) {
	t.format(w, "ops/s", t.OpsPerSec)
	for _, m := range t.OpsPerCPUSec {
		for _, v := range m {
			if v > 0 {
				fmt.Fprintln(w)
				t.format(w, "ops/CPU-s", t.OpsPerCPUSec)
				return
			}
		}
	}
}

func (t Table) format(w io.Writer, unit string, ops map[string]map[string]float64) {
	fmt.Fprintf(w, "%-8s", "workload")
	for _, b := range t.Backends {
		fmt.Fprintf(w, " %15s", b+" "+unit)
	}
	ratios := [][2]string{}
	for _, other := range []string{"file", "bbolt"} {
		if slices.Contains(t.Backends, "pmem") && slices.Contains(t.Backends, other) {
			ratios = append(ratios, [2]string{"pmem", other})
			fmt.Fprintf(w, " %11s", "pmem/"+other)
		}
	}
	fmt.Fprintln(w)
	for _, wl := range t.Workloads {
		fmt.Fprintf(w, "%-8s", wl)
		for _, b := range t.Backends {
			fmt.Fprintf(w, " %15.0f", ops[wl][b])
		}
		for _, r := range ratios {
			fmt.Fprintf(w, " %10.1fx", ops[wl][r[0]]/ops[wl][r[1]])
		}
		fmt.Fprintln(w)
	}
}

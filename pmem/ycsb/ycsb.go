package ycsb

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/blossom-dso/blossom/internal/cputime"
	"github.com/blossom-dso/blossom/pmem/kv"
)

// Workload is a YCSB core workload: operation proportions (summing to 1) and
// the request distribution ("zipfian" or "latest").
type Workload struct {
	Name                                string
	Read, Update, Insert, Scan, ReadMod float64
	Distribution                        string
}

// Workloads are YCSB's core workloads A to F.
var Workloads = []Workload{
	{Name: "A", Read: 0.5, Update: 0.5, Distribution: "zipfian"},
	{Name: "B", Read: 0.95, Update: 0.05, Distribution: "zipfian"},
	{Name: "C", Read: 1, Distribution: "zipfian"},
	{Name: "D", Read: 0.95, Insert: 0.05, Distribution: "latest"},
	{Name: "E", Scan: 0.95, Insert: 0.05, Distribution: "zipfian"},
	{Name: "F", Read: 0.5, ReadMod: 0.5, Distribution: "zipfian"},
}

// WorkloadByName returns the core workload named name ("A".."F").
func WorkloadByName(name string) (Workload, error) {
	for _, w := range Workloads {
		if w.Name == name {
			return w, nil
		}
	}
	return Workload{}, fmt.Errorf("ycsb: no workload %q", name)
}

// Config sizes a run. The zero value of a field picks YCSB's default.
type Config struct {
	Records     int    // records loaded (recordcount); default 10000
	Ops         int    // operations per workload run (operationcount); default 10000
	Fields      int    // fields per record; default 10
	FieldLength int    // bytes per field; default 100
	MaxScan     int    // longest scan; default 100
	Seed        uint64 // seeds every random choice
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Records, 10000)
	def(&c.Ops, 10000)
	def(&c.Fields, 10)
	def(&c.FieldLength, 100)
	def(&c.MaxScan, 100)
	return c
}

// Runner drives workloads against one store. It remembers how many records
// exist, so workloads that insert (D, E) can follow one another.
type Runner struct {
	cfg      Config
	store    kv.Store
	rng      *rand.Rand
	inserted uint64
	keys     *scrambledZipfian
	latest   *zipfian
	readBuf  [][]byte // the fields a read copies out, reused
	valBuf   []byte   // an update's value, reused (stores copy it)
	recBuf   [][]byte // an insert's record, reused
}

// NewRunner returns a runner for store; call Load before Run.
func NewRunner(store kv.Store, cfg Config) *Runner {
	cfg = cfg.withDefaults()
	return &Runner{cfg: cfg, store: store, rng: rand.New(rand.NewPCG(cfg.Seed, 0x5943534221)), keys: newScrambledZipfian()}
}

// value returns a field of printable ASCII in b's memory (b is grown to the
// field length). It draws one random word per eight bytes: the generator's
// cost counts in every back end's time, so it is kept small.
func (r *Runner) value(b []byte) []byte {
	b = append(b[:0], make([]byte, r.cfg.FieldLength)...)
	var w uint64
	for i := range b {
		if i%8 == 0 {
			w = r.rng.Uint64()
		}
		b[i] = ' ' + byte(w)%95
		w >>= 8
	}
	return b
}

// record returns a new record's fields in the runner's reused buffers
// (stores copy what they insert).
func (r *Runner) record() [][]byte {
	if len(r.recBuf) != r.cfg.Fields {
		r.recBuf = make([][]byte, r.cfg.Fields)
	}
	for i := range r.recBuf {
		r.recBuf[i] = r.value(r.recBuf[i])
	}
	return r.recBuf
}

// read reads the record under key into the runner's buffers and checks its
// shape.
func (r *Runner) read(key string) error {
	f, err := r.store.Read(key, r.readBuf)
	if err != nil {
		return err
	}
	r.readBuf = f
	if len(f) != r.cfg.Fields {
		return fmt.Errorf("ycsb: record with %d fields", len(f))
	}
	return nil
}

// update writes one random field of the record under key (YCSB's default,
// writeallfields=false).
func (r *Runner) update(key string) error {
	i := r.rng.IntN(r.cfg.Fields)
	r.valBuf = r.value(r.valBuf)
	return r.store.Update(key, i, r.valBuf)
}

// Load inserts the configured number of records.
func (r *Runner) Load() error {
	for i := 0; i < r.cfg.Records; i++ {
		if err := r.store.Insert(Key(r.inserted), r.record()); err != nil {
			return err
		}
		r.inserted++
	}
	r.latest = newZipfian(r.inserted)
	return nil
}

// nextKeyNum draws the key number of a read, update or scan.
func (r *Runner) nextKeyNum(dist string) uint64 {
	if dist == "latest" {
		r.latest.grow(r.inserted)
		return r.inserted - 1 - r.latest.next(r.rng)
	}
	return r.keys.next(r.rng, r.inserted)
}

// Result is one workload run's outcome.
type Result struct {
	Workload string
	Ops      int
	Elapsed  time.Duration
	// CPU is the CPU time (user plus system, all threads) the process used
	// during the run; 0 where it cannot be measured.
	CPU    time.Duration
	Counts map[string]int // operations by kind
}

// OpsPerSec is the run's throughput.
func (res Result) OpsPerSec() float64 { return float64(res.Ops) / res.Elapsed.Seconds() }

// OpsPerCPUSec is the run's throughput per CPU-second: on a loaded machine,
// where the wall clock also counts the time other processes held the CPU,
// it is the steadier measure of a store's cost.
func (res Result) OpsPerCPUSec() float64 {
	if res.CPU <= 0 {
		return 0
	}
	return float64(res.Ops) / res.CPU.Seconds()
}

// Run executes cfg.Ops operations of workload w and returns the throughput.
// A read that finds no record, or a record of the wrong shape, is an error.
func (r *Runner) Run(w Workload) (Result, error) {
	if r.latest == nil {
		return Result{}, errors.New("ycsb: Run before Load")
	}
	res := Result{Workload: w.Name, Ops: r.cfg.Ops, Counts: map[string]int{}}
	start, cpu0 := time.Now(), cputime.Process()
	for i := 0; i < r.cfg.Ops; i++ {
		p := r.rng.Float64()
		var err error
		switch {
		case p < w.Read:
			res.Counts["read"]++
			err = r.read(Key(r.nextKeyNum(w.Distribution)))
		case p < w.Read+w.Update:
			res.Counts["update"]++
			err = r.update(Key(r.nextKeyNum(w.Distribution)))
		case p < w.Read+w.Update+w.Insert:
			res.Counts["insert"]++
			err = r.store.Insert(Key(r.inserted), r.record())
			r.inserted++
		case p < w.Read+w.Update+w.Insert+w.Scan:
			res.Counts["scan"]++
			n := 1 + r.rng.IntN(r.cfg.MaxScan)
			seen := 0
			err = r.store.Scan(Key(r.nextKeyNum(w.Distribution)), n, func(_ string, f [][]byte) bool {
				seen++
				return len(f) == r.cfg.Fields
			})
			if err == nil && seen == 0 {
				err = errors.New("ycsb: empty scan")
			}
		default:
			res.Counts["readmodifywrite"]++
			k := Key(r.nextKeyNum(w.Distribution))
			if err = r.read(k); err == nil {
				err = r.update(k)
			}
		}
		if err != nil {
			return res, fmt.Errorf("ycsb: workload %s op %d: %w", w.Name, i, err)
		}
	}
	res.Elapsed, res.CPU = time.Since(start), cputime.Process()-cpu0
	return res, nil
}

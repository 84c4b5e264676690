package simnet

import (
	"embed"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
)

//go:embed latency/gcp-rtt-ms.csv latency/aws-rtt-ms.csv
var latencyFS embed.FS

// ErrLatency is wrapped by every error of ParseLatency and of latency model
// construction.
var ErrLatency = errors.New("simnet: bad latency model")

// LatencyKind names a latency model.
type LatencyKind uint8

// The latency models.
const (
	// Constant: every message between two distinct nodes takes the same
	// one-way delay.
	Constant LatencyKind = iota + 1
	// Uniform: every message between two distinct nodes takes a one-way
	// delay drawn uniformly from [Min, Max].
	Uniform
	// Planet: nodes sit at cloud regions and a message takes half the
	// measured average round-trip time between their regions.
	Planet
)

// Latency describes a latency model; ParseLatency builds one from a string.
type Latency struct {
	Kind LatencyKind
	// ConstantMS is the one-way delay of the Constant model.
	ConstantMS float64
	// MinMS and MaxMS bound the one-way delay of the Uniform model.
	MinMS, MaxMS float64
	// Planet names the RTT matrix of the Planet model: "gcp" or "aws".
	Planet string
	// JitterMS adds a delay drawn uniformly from [0, JitterMS] to every
	// message between distinct nodes.
	JitterMS float64
	// JitterPct adds a delay drawn uniformly from [0, JitterPct% of the base
	// delay] to every message between distinct nodes.
	JitterPct float64
}

// ParseLatency parses a latency model:
//
//	constant:MS          one-way delay MS milliseconds between distinct nodes
//	uniform:MIN-MAX      one-way delay uniform in [MIN, MAX] milliseconds
//	planet:gcp           GCP inter-region RTT matrix, one-way = avg RTT / 2
//	planet:aws           AWS inter-region RTT matrix
//
// optionally followed by ",jitter=MS" (extra uniform delay in [0, MS] ms) or
// ",jitter=P%" (extra uniform delay in [0, P% of the base delay]).
func ParseLatency(s string) (Latency, error) {
	var l Latency
	spec := strings.TrimSpace(s)
	if spec == "" {
		return l, fmt.Errorf("%w: empty (want constant:MS, uniform:MIN-MAX, planet:gcp or planet:aws)", ErrLatency)
	}
	parts := strings.Split(spec, ",")
	model := strings.TrimSpace(parts[0])
	kind, arg, ok := strings.Cut(model, ":")
	if !ok {
		return l, fmt.Errorf("%w: %q: want constant:MS, uniform:MIN-MAX, planet:gcp or planet:aws", ErrLatency, s)
	}
	switch kind {
	case "constant":
		v, err := parseMS(arg)
		if err != nil {
			return l, fmt.Errorf("%w: %q: constant delay: %v", ErrLatency, s, err)
		}
		l.Kind, l.ConstantMS = Constant, v
	case "uniform":
		lo, hi, ok := strings.Cut(arg, "-")
		if !ok {
			return l, fmt.Errorf("%w: %q: want uniform:MIN-MAX in milliseconds", ErrLatency, s)
		}
		a, err := parseMS(lo)
		if err != nil {
			return l, fmt.Errorf("%w: %q: uniform minimum: %v", ErrLatency, s, err)
		}
		b, err := parseMS(hi)
		if err != nil {
			return l, fmt.Errorf("%w: %q: uniform maximum: %v", ErrLatency, s, err)
		}
		if b < a {
			return l, fmt.Errorf("%w: %q: uniform maximum %v below minimum %v", ErrLatency, s, b, a)
		}
		l.Kind, l.MinMS, l.MaxMS = Uniform, a, b
	case "planet":
		if arg != "gcp" && arg != "aws" {
			return l, fmt.Errorf("%w: %q: unknown planet matrix %q (want gcp or aws)", ErrLatency, s, arg)
		}
		l.Kind, l.Planet = Planet, arg
	default:
		return l, fmt.Errorf("%w: %q: unknown model %q (want constant, uniform or planet)", ErrLatency, s, kind)
	}
	for _, p := range parts[1:] {
		p = strings.TrimSpace(p)
		name, val, ok := strings.Cut(p, "=")
		if !ok || name != "jitter" {
			return l, fmt.Errorf("%w: %q: unknown option %q (want jitter=MS or jitter=P%%)", ErrLatency, s, p)
		}
		if pct, isPct := strings.CutSuffix(val, "%"); isPct {
			v, err := parseMS(pct)
			if err != nil {
				return l, fmt.Errorf("%w: %q: jitter: %v", ErrLatency, s, err)
			}
			l.JitterPct = v
		} else {
			v, err := parseMS(val)
			if err != nil {
				return l, fmt.Errorf("%w: %q: jitter: %v", ErrLatency, s, err)
			}
			l.JitterMS = v
		}
	}
	return l, nil
}

func parseMS(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("%v is negative", v)
	}
	if v > 1e6 {
		return 0, fmt.Errorf("%v ms is more than 1000 s", v)
	}
	return v, nil
}

// String formats l in the syntax ParseLatency accepts.
func (l Latency) String() string {
	var s string
	switch l.Kind {
	case Constant:
		s = "constant:" + fmtMS(l.ConstantMS)
	case Uniform:
		s = "uniform:" + fmtMS(l.MinMS) + "-" + fmtMS(l.MaxMS)
	case Planet:
		s = "planet:" + l.Planet
	default:
		return "invalid"
	}
	if l.JitterMS > 0 {
		s += ",jitter=" + fmtMS(l.JitterMS)
	}
	if l.JitterPct > 0 {
		s += ",jitter=" + fmtMS(l.JitterPct) + "%"
	}
	return s
}

func fmtMS(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// Matrix is a table of measured round-trip times between cloud regions.
type Matrix struct {
	// Name is "gcp" or "aws".
	Name string
	// Regions lists the regions that appear in the table, sorted.
	Regions []string
	rtt     map[[2]string]float64 // avg RTT in ms, as measured (may be asymmetric)
}

var (
	matrixOnce  sync.Once
	matrices    map[string]*Matrix
	matrixError error
)

// PlanetMatrix returns the embedded RTT matrix name ("gcp" or "aws").
func PlanetMatrix(name string) (*Matrix, error) {
	matrixOnce.Do(func() {
		matrices = map[string]*Matrix{}
		for _, n := range []string{"gcp", "aws"} {
			m, err := loadMatrix(n)
			if err != nil {
				matrixError = err
				return
			}
			matrices[n] = m
		}
	})
	if matrixError != nil {
		return nil, matrixError
	}
	m, ok := matrices[name]
	if !ok {
		return nil, fmt.Errorf("%w: unknown planet matrix %q (want gcp or aws)", ErrLatency, name)
	}
	return m, nil
}

func loadMatrix(name string) (*Matrix, error) {
	path := "latency/" + name + "-rtt-ms.csv"
	f, err := latencyFS.Open(path)
	if err != nil {
		return nil, fmt.Errorf("simnet: load %s: %w", path, err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("simnet: load %s: %w", path, err)
	}
	if len(rows) < 2 || len(rows[0]) < 4 || rows[0][0] != "from" || rows[0][1] != "to" || rows[0][3] != "avg_ms" {
		return nil, fmt.Errorf("simnet: load %s: unexpected header %v", path, rows[0])
	}
	m := &Matrix{Name: name, rtt: map[[2]string]float64{}}
	seen := map[string]bool{}
	for i, r := range rows[1:] {
		v, err := strconv.ParseFloat(r[3], 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("simnet: load %s line %d: bad avg_ms %q", path, i+2, r[3])
		}
		m.rtt[[2]string{r[0], r[1]}] = v
		for _, reg := range r[:2] {
			if !seen[reg] {
				seen[reg] = true
				m.Regions = append(m.Regions, reg)
			}
		}
	}
	slices.Sort(m.Regions)
	return m, nil
}

// HasRegion reports whether region appears in the matrix.
func (m *Matrix) HasRegion(region string) bool {
	_, ok := slices.BinarySearch(m.Regions, region)
	return ok
}

// RTT returns the average round-trip time in milliseconds from one region to
// another, falling back to the reverse direction when a direction was not
// measured.
func (m *Matrix) RTT(from, to string) (float64, bool) {
	if v, ok := m.rtt[[2]string{from, to}]; ok {
		return v, true
	}
	v, ok := m.rtt[[2]string{to, from}]
	return v, ok
}

// DefaultSites returns the default regions of the planet matrix name for n
// nodes: the first n of a list that spreads the first few nodes over
// continents. Nodes beyond the list's length reuse it round-robin.
func DefaultSites(planet string, n int) []string {
	var list []string
	switch planet {
	case "gcp":
		list = gcpSites
	case "aws":
		list = awsSites
	default:
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = list[i%len(list)]
	}
	return out
}

var gcpSites = []string{
	"asia-southeast1", "europe-west4", "southamerica-east1", "australia-southeast1", "europe-west2",
	"asia-south1", "us-east1", "asia-northeast1", "europe-west1", "asia-east1", "us-west1",
	"europe-west3", "us-central1",
}

var awsSites = []string{
	"ap-southeast-1", "eu-west-3", "sa-east-1", "ap-southeast-2", "eu-west-2",
	"ap-south-1", "us-east-1", "ap-northeast-1", "eu-west-1", "ap-east-1", "us-west-2",
	"eu-central-1", "us-east-2",
}

// links is a latency model compiled for one deployment: one-way delays in
// microseconds between node indices 0..n-1.
type links struct {
	n         int
	base      []int64 // n*n: one-way delay from i to j (Uniform: the minimum)
	spread    []int64 // n*n: Uniform: max-min; else nil
	jitterUS  int64   // extra delay uniform in [0, jitterUS]
	jitterPct int64   // extra delay uniform in [0, base*jitterPct/100]
	local     []int64 // per node: client <-> replica delay at the node's site
	maxOneWay int64   // greatest possible one-way delay between nodes
	sites     []string
}

// localUS is the client-to-replica delay of the non-planet models.
const localUS = 1

func msToUS(ms float64) int64 { return int64(math.Round(ms * 1000)) }

// compileLinks builds the per-pair delays of l for nodes placed at sites.
// For non-planet models sites are labels only and the client-to-replica
// delay is localUS (1µs), so that an operation always takes time.
func compileLinks(l Latency, sites []string) (*links, error) {
	n := len(sites)
	k := &links{n: n, base: make([]int64, n*n), local: make([]int64, n), sites: sites,
		jitterUS: msToUS(l.JitterMS), jitterPct: int64(math.Round(l.JitterPct))}
	if l.Kind != Planet {
		for i := range k.local {
			k.local[i] = localUS
		}
	}
	switch l.Kind {
	case Constant:
		d := msToUS(l.ConstantMS)
		for i := range n {
			for j := range n {
				if i != j {
					k.base[i*n+j] = d
				}
			}
		}
	case Uniform:
		k.spread = make([]int64, n*n)
		lo, hi := msToUS(l.MinMS), msToUS(l.MaxMS)
		for i := range n {
			for j := range n {
				if i != j {
					k.base[i*n+j], k.spread[i*n+j] = lo, hi-lo
				}
			}
		}
	case Planet:
		m, err := PlanetMatrix(l.Planet)
		if err != nil {
			return nil, err
		}
		for _, s := range sites {
			if !m.HasRegion(s) {
				return nil, fmt.Errorf("%w: unknown %s region %q (known: %s)", ErrLatency, l.Planet, s, strings.Join(m.Regions, ", "))
			}
		}
		for i := range n {
			for j := range n {
				rtt, ok := m.RTT(sites[i], sites[j])
				if !ok {
					return nil, fmt.Errorf("%w: %s matrix has no RTT between %s and %s", ErrLatency, l.Planet, sites[i], sites[j])
				}
				if i == j {
					k.local[i] = max(1, msToUS(rtt/2))
					continue
				}
				k.base[i*n+j] = max(1, msToUS(rtt/2))
			}
		}
	default:
		return nil, fmt.Errorf("%w: no model", ErrLatency)
	}
	for i := range n {
		for j := range n {
			d := k.base[i*n+j]
			if k.spread != nil {
				d += k.spread[i*n+j]
			}
			d += k.jitterUS + d*k.jitterPct/100
			k.maxOneWay = max(k.maxOneWay, d)
		}
	}
	return k, nil
}

// delay draws the one-way delay of one message from i to j (i != j).
func (k *links) delay(r *rand.Rand, i, j int) int64 {
	idx := i*k.n + j
	d := k.base[idx]
	if k.spread != nil {
		if s := k.spread[idx]; s > 0 {
			d += r.Int64N(s + 1)
		}
	}
	if k.jitterPct > 0 {
		if x := d * k.jitterPct / 100; x > 0 {
			d += r.Int64N(x + 1)
		}
	}
	if k.jitterUS > 0 {
		d += r.Int64N(k.jitterUS + 1)
	}
	return d
}

// clientDelay is the one-way delay between a client at node home's site and
// replica r.
func (k *links) clientDelay(r *rand.Rand, home, replica int) int64 {
	if home == replica {
		return k.local[home]
	}
	return k.delay(r, home, replica)
}
